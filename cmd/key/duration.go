package key

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// days is a duration flag that also takes days, as operators write
// rotation periods and retention: 30d, 90d, 1d12h, or any Go duration.
type days time.Duration

var daysRe = regexp.MustCompile(`^(\d+)d(.*)$`)

func (d *days) Set(s string) error {
	v, err := parseDays(s)
	if err != nil {
		return err
	}
	*d = days(v)
	return nil
}

func parseDays(s string) (time.Duration, error) {
	var total time.Duration
	rest := s
	if m := daysRe.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > 100000 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		total, rest = time.Duration(n)*24*time.Hour, m[2]
		if rest == "" {
			return total, nil
		}
	}
	v, err := time.ParseDuration(rest)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use e.g. 30d, 12h, 1d12h", s)
	}
	return total + v, nil
}

func (d *days) String() string {
	v := time.Duration(*d)
	if v > 0 && v%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", v/(24*time.Hour))
	}
	return v.String()
}

func (d *days) Type() string { return "duration" }
