package stack

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/microctl/microctl/internal/cmdutil"
	stk "github.com/microctl/microctl/pkg/stack"
)

// progress renders the progress of a deploy, rollback or scale on stderr:
// one line per service. It is the Reporter pkg/stack reports through; the
// terminal and its escape codes are the command's business, not the
// library's. Live, the block of lines is redrawn in place; otherwise a line
// is printed only when a service's state changes, which is what a CI log
// or `2> file` wants.
type progress struct {
	w     io.Writer
	live  bool
	width int

	mu    sync.Mutex
	drawn int               // lines of the live block on screen
	last  map[string]string // plain mode: the last line printed per service
	prev  []stk.State
	start time.Time
}

// newProgress renders on the streams' stderr, redrawn in place when that
// is a terminal, so deploy, rollback and scale show progress alike.
func newProgress(ios *cmdutil.IOStreams) *progress {
	return newProgressTo(ios.ErrOut, ios.ProgressEnabled(), ios.TerminalWidth())
}

// newProgressTo returns a renderer; live redraws in place (a terminal),
// width is the terminal's width (lines are cut to it so redraws stay
// aligned; 0 means 100).
func newProgressTo(w io.Writer, live bool, width int) *progress {
	if width <= 0 {
		width = 100
	}
	return &progress{w: w, live: live, width: width, last: map[string]string{}, start: time.Now()}
}

// States implements Reporter.
func (p *progress) States(states []stk.State) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prev = states
	if p.live {
		p.redraw()
		return
	}
	nameW := nameWidth(states)
	for _, s := range states {
		line := formatState(s, nameW, false)
		if p.last[s.Service] == line {
			continue
		}
		p.last[s.Service] = line
		fmt.Fprintln(p.w, strings.TrimRight(line, " "))
	}
}

// Event implements Reporter.
func (p *progress) Event(msg string) {
	// Events quote the engine and Consul (task errors, instance IDs):
	// made visible, never executed.
	msg = cmdutil.Sanitize(msg)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live {
		p.clear()
		fmt.Fprintln(p.w, p.cut(msg))
		p.redraw()
		return
	}
	fmt.Fprintln(p.w, msg)
}

// Done ends a live block so later output starts below it.
func (p *progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drawn = 0
}

func (p *progress) clear() {
	if p.drawn == 0 {
		return
	}
	fmt.Fprintf(p.w, "\x1b[%dA", p.drawn)
	for i := 0; i < p.drawn; i++ {
		fmt.Fprint(p.w, "\x1b[2K\n")
	}
	fmt.Fprintf(p.w, "\x1b[%dA", p.drawn)
	p.drawn = 0
}

func (p *progress) redraw() {
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", p.drawn)
	}
	nameW := nameWidth(p.prev)
	for _, s := range p.prev {
		fmt.Fprint(p.w, "\x1b[2K"+p.cut(formatState(s, nameW, true))+"\n")
	}
	p.drawn = len(p.prev)
}

func (p *progress) cut(s string) string {
	s = strings.TrimRight(s, " ")
	if r := []rune(s); len(r) > p.width-1 {
		return string(r[:p.width-2]) + "…"
	}
	return s
}

func nameWidth(states []stk.State) int {
	n := 0
	for _, s := range states {
		if len(s.Service) > n {
			n = len(s.Service)
		}
	}
	return n
}

// formatState is one progress line: name, tasks running/desired (or
// completed for a job), phase, update state and the latest task error.
func formatState(s stk.State, nameW int, live bool) string {
	counts := fmt.Sprintf("%d/%d", s.Running, s.Desired)
	if s.Job {
		counts += " done"
	}
	if s.Phase == stk.PhaseWaiting || s.Phase == stk.PhaseSkipped || (s.Running == 0 && s.Desired == 0 && !s.Phase.OK()) {
		counts = "-"
	}
	phase := string(s.Phase)
	if s.Phase == stk.PhaseVerifying && live && s.VerifyLeft > 0 {
		phase = fmt.Sprintf("verifying (%s)", s.VerifyLeft)
	}
	switch s.Update {
	case "", "updating", "completed", "rollback_completed":
	default:
		if s.Phase == stk.PhaseUpdating || s.Phase == stk.PhaseRollingBack || s.Phase == stk.PhaseFailed {
			phase += " (update " + strings.ReplaceAll(s.Update, "_", " ") + ")"
		}
	}
	line := fmt.Sprintf("%-*s  %-9s  %s", nameW, s.Service, counts, phase)
	if s.Message != "" {
		line += "  " + cmdutil.Sanitize(s.Message)
	}
	return line
}
