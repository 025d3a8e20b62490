package swarm

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress renders a deploy's progress on a writer (stderr): one line per
// service. Live, the block of lines is redrawn in place; otherwise a line
// is printed only when a service's state changes, which is what a CI log
// or `2> file` wants.
type Progress struct {
	w     io.Writer
	live  bool
	width int

	mu    sync.Mutex
	drawn int               // lines of the live block on screen
	last  map[string]string // plain mode: the last line printed per service
	prev  []State
	start time.Time
}

// NewProgress returns a renderer; live redraws in place (a terminal),
// width is the terminal's width (lines are cut to it so redraws stay
// aligned; 0 means 100).
func NewProgress(w io.Writer, live bool, width int) *Progress {
	if width <= 0 {
		width = 100
	}
	return &Progress{w: w, live: live, width: width, last: map[string]string{}, start: time.Now()}
}

// States implements Reporter.
func (p *Progress) States(states []State) {
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
func (p *Progress) Event(msg string) {
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
func (p *Progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drawn = 0
}

func (p *Progress) clear() {
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

func (p *Progress) redraw() {
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", p.drawn)
	}
	nameW := nameWidth(p.prev)
	for _, s := range p.prev {
		fmt.Fprint(p.w, "\x1b[2K"+p.cut(formatState(s, nameW, true))+"\n")
	}
	p.drawn = len(p.prev)
}

func (p *Progress) cut(s string) string {
	s = strings.TrimRight(s, " ")
	if r := []rune(s); len(r) > p.width-1 {
		return string(r[:p.width-2]) + "…"
	}
	return s
}

func nameWidth(states []State) int {
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
func formatState(s State, nameW int, live bool) string {
	counts := fmt.Sprintf("%d/%d", s.Running, s.Desired)
	if s.Job {
		counts += " done"
	}
	if s.Phase == PhaseWaiting || s.Phase == PhaseSkipped || (s.Running == 0 && s.Desired == 0 && !s.Phase.OK()) {
		counts = "-"
	}
	phase := string(s.Phase)
	if s.Phase == PhaseVerifying && live && s.VerifyLeft > 0 {
		phase = fmt.Sprintf("verifying (%s)", s.VerifyLeft)
	}
	switch s.Update {
	case "", "updating", "completed", "rollback_completed":
	default:
		if s.Phase == PhaseUpdating || s.Phase == PhaseRollingBack || s.Phase == PhaseFailed {
			phase += " (update " + strings.ReplaceAll(s.Update, "_", " ") + ")"
		}
	}
	line := fmt.Sprintf("%-*s  %-9s  %s", nameW, s.Service, counts, phase)
	if s.Message != "" {
		line += "  " + s.Message
	}
	return line
}
