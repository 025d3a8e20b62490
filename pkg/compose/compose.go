package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"
	"go.yaml.in/yaml/v4"

	"github.com/microctl/microctl/internal/textutil"
)

// LoadOptions say which compose files to read and how to interpolate them.
type LoadOptions struct {
	// Files are merged in order, later ones overriding earlier ones.
	Files []string
	// Stack is the stack (project) name. Empty: the file's top-level
	// `name:`, else COMPOSE_PROJECT_NAME, else the directory's name.
	Stack string
	// EnvFiles replace the default .env next to the first file.
	EnvFiles []string
	// Profiles to enable; empty means COMPOSE_PROFILES.
	Profiles []string
	// Env is the environment used for ${VAR} interpolation; nil means the
	// process environment. Values in it win over .env files, as in compose.
	Env []string
	// Stdin is what the file named "-" holds, read by the caller from its
	// streams (IOStreams.ReadUserFile). Nil: compose-go reads the
	// process's stdin itself.
	Stdin []byte
}

// ComposeError is a compose file that cannot be loaded: missing, not YAML,
// not valid against the compose schema, or using a variable that must be
// set. Nothing has been created when it is returned.
type ComposeError struct {
	Files []string
	Err   error
}

func (e *ComposeError) Error() string {
	msg := textutil.OneLine(e.Err.Error())
	return msg
}

func (e *ComposeError) Unwrap() error { return e.Err }

// Hint says what to do about it.
func (e *ComposeError) Hint() string {
	var pe *fs.PathError
	switch {
	case errors.As(e.Err, &pe) && errors.Is(pe.Err, fs.ErrNotExist):
		return "check the path given to -f"
	case strings.Contains(e.Err.Error(), "required variable"):
		return "set it in the environment, in .env or in a file given with --env-file"
	}
	return ""
}

// logrusMu serialises loads: compose-go reports some warnings through the
// global logrus logger, which we redirect for the duration of a load.
var logrusMu sync.Mutex

// warningHook collects compose-go's logrus warnings instead of letting them
// go to stderr in logrus's own format.
type warningHook struct{ msgs []string }

func (h *warningHook) Levels() []logrus.Level {
	return []logrus.Level{logrus.WarnLevel, logrus.ErrorLevel}
}

func (h *warningHook) Fire(e *logrus.Entry) error {
	// `version` is normal in files written for docker stack deploy;
	// warning about it on every deploy would only be noise.
	if strings.Contains(e.Message, "the attribute `version` is obsolete") {
		return nil
	}
	h.msgs = append(h.msgs, e.Message)
	return nil
}

// LoadCompose reads, merges and interpolates the compose files with
// compose-go. It returns the project and the loader's warnings.
func LoadCompose(ctx context.Context, o LoadOptions) (p *types.Project, warnings []string, err error) {
	// compose-go trusts its schema to have rejected malformed input; should
	// anything get past it and panic, the user still gets one line.
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, &ComposeError{Files: o.Files, Err: fmt.Errorf("compose-go could not load the file: %v", r)}
		}
	}()
	if len(o.Files) == 0 {
		return nil, nil, errors.New("no compose file given")
	}
	for _, f := range o.Files {
		if f == "-" {
			continue
		}
		st, err := os.Stat(f)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) && errors.Is(pe.Err, fs.ErrNotExist) {
				return nil, nil, &ComposeError{Files: o.Files, Err: fmt.Errorf("compose file %s: %w", f, &fs.PathError{Op: "open", Path: f, Err: fs.ErrNotExist})}
			}
			return nil, nil, &ComposeError{Files: o.Files, Err: err}
		}
		if st.IsDir() {
			return nil, nil, &ComposeError{Files: o.Files, Err: fmt.Errorf("compose file %s is a directory", f)}
		}
	}
	files, tmp, cleanup, err := withStdin(o.Files, o.Stdin)
	if err != nil {
		return nil, nil, &ComposeError{Files: o.Files, Err: err}
	}
	defer cleanup()
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	opts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(filepath.Dir(o.Files[0])),
		cli.WithEnv(env),
		cli.WithEnvFiles(o.EnvFiles...),
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithDefaultProfiles(o.Profiles...),
		cli.WithResolvedPaths(true),
	}
	if o.Stack != "" {
		opts = append(opts, cli.WithName(o.Stack))
	}

	popts, err := cli.NewProjectOptions(files, opts...)
	if err != nil {
		return nil, nil, &ComposeError{Files: o.Files, Err: stdinNamed(err, tmp)}
	}

	logrusMu.Lock()
	defer logrusMu.Unlock()
	hook := &warningHook{}
	std := logrus.StandardLogger()
	oldOut, oldHooks := std.Out, std.ReplaceHooks(logrus.LevelHooks{})
	std.SetOutput(io.Discard)
	std.AddHook(hook)
	defer func() {
		std.SetOutput(oldOut)
		std.ReplaceHooks(oldHooks)
	}()

	if err := checkYAML(files); err != nil {
		return nil, nil, &ComposeError{Files: o.Files, Err: stdinNamed(err, tmp)}
	}
	p, err = popts.LoadProject(ctx)
	if err != nil {
		return nil, hook.msgs, &ComposeError{Files: o.Files, Err: stdinNamed(cleanLoadError(err), tmp)}
	}
	return p, hook.msgs, nil
}

var (
	schemaErrRe  = regexp.MustCompile(`^validating (.+?): (\S+) (.*)$`)
	loaderSuffix = regexp.MustCompile(`: invalid compose project$`)
	yamlPosRe    = regexp.MustCompile(`line (\d+)`)
)

// checkYAML parses each file on its own first, so a syntax error names the
// file and the line; compose-go's message names neither reliably.
func checkYAML(files []string) error {
	for _, f := range files {
		if f == "-" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var v any
			err := dec.Decode(&v)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				line, msg := yamlErrorLine(err)
				if line > 0 {
					return fmt.Errorf("%s:%d: invalid YAML: %s", f, line, msg)
				}
				return fmt.Errorf("%s: invalid YAML: %s", f, msg)
			}
		}
	}
	return nil
}

// yamlParserErr recognises the parser's messages (as opposed to the
// scanner's) in go.yaml.in/yaml/v4 rc.4: they print 0-based line numbers,
// the scanner's are 1-based.
var yamlParserErr = regexp.MustCompile(`while parsing|did not find expected|found duplicate|found incompatible|found undefined tag`)

// yamlErrorLine returns the line a YAML error points at, 1-based as an
// editor shows it (where the parser gave up: the last position in the
// message), and the message with its line numbers corrected and that last
// position dropped (the file:line prefix gives it).
func yamlErrorLine(err error) (int, string) {
	msg := strings.TrimPrefix(textutil.OneLine(err.Error()), "yaml: ")
	shift := 0
	if yamlParserErr.MatchString(msg) {
		shift = 1
		msg = strings.ReplaceAll(msg, "<unknown position>", "line 0")
	}
	msg = yamlPosRe.ReplaceAllStringFunc(msg, func(m string) string {
		n, _ := strconv.Atoi(strings.TrimPrefix(m, "line "))
		return "line " + strconv.Itoa(n+shift)
	})
	locs := yamlPosRe.FindAllStringSubmatchIndex(msg, -1)
	if locs == nil {
		return 0, msg
	}
	last := locs[len(locs)-1]
	line, _ := strconv.Atoi(msg[last[2]:last[3]])
	rest := yamlPosTail.ReplaceAllString(msg[last[1]:], "")
	head := strings.TrimSuffix(strings.TrimSpace(strings.TrimSuffix(msg[:last[0]], " at ")), ":")
	switch {
	case head == "":
		msg = rest
	case rest == "":
		msg = head
	default:
		msg = rest + " (" + head + ")"
	}
	return line, msg
}

var yamlPosTail = regexp.MustCompile(`^(, column \d+)?:? ?`)

// cleanLoadError makes compose-go's messages read as one sentence that
// names the file and the field.
func cleanLoadError(err error) error {
	msg := textutil.OneLine(err.Error())
	if m := schemaErrRe.FindStringSubmatch(msg); m != nil {
		what := m[3]
		switch what {
		case "false schema":
			what = "is not allowed here (not a compose-spec field)"
		}
		return fmt.Errorf("%s: %s %s", m[1], m[2], what)
	}
	if loaderSuffix.MatchString(msg) {
		return errors.New(loaderSuffix.ReplaceAllString(msg, ""))
	}
	return err
}
