package compose

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// withStdin replaces the file named "-" by a temporary file holding
// content, so that compose-go, which would read the process's own stdin
// for "-", loads what the caller read (the command's IOStreams). It
// returns the files to load, the temporary file's name ("" when none) and
// a cleanup to run once the load is done.
func withStdin(files []string, content []byte) ([]string, string, func(), error) {
	i := slices.Index(files, "-")
	if content == nil || i < 0 {
		return files, "", func() {}, nil
	}
	f, err := os.CreateTemp("", "microctl-stdin-*.yml")
	if err != nil {
		return nil, "", nil, fmt.Errorf("keep the compose file read from stdin: %w", err)
	}
	cleanup := func() { os.Remove(f.Name()) }
	if _, err := f.Write(content); err != nil {
		f.Close()
		cleanup()
		return nil, "", nil, fmt.Errorf("keep the compose file read from stdin: %w", err)
	}
	if err := f.Close(); err != nil {
		cleanup()
		return nil, "", nil, fmt.Errorf("keep the compose file read from stdin: %w", err)
	}
	out := slices.Clone(files)
	out[i] = f.Name()
	return out, f.Name(), cleanup, nil
}

// stdinNamed says "-" where an error names the temporary file standing in
// for stdin: the user gave "-", not a path they never saw.
func stdinNamed(err error, tmp string) error {
	if err == nil || tmp == "" || !strings.Contains(err.Error(), tmp) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), tmp, "-"))
}
