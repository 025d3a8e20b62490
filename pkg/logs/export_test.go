package logs

// Readers is the number of task readers running.
func Readers() int64 { return readers.Load() }
