# Is everything microctl talks to there and healthy?
run version
run doctor
