package health

import (
	"fmt"
	"strings"
)

// UnknownServiceError names a service Consul does not have and, when one
// is close enough, the service the user probably meant.
type UnknownServiceError struct {
	Name       string
	Suggestion string
	// Filtered is true when ACLs hid some services: the service may exist
	// and the token may not read it.
	Filtered bool
}

func (e *UnknownServiceError) Error() string {
	msg := "no service named " + quote(e.Name)
	if e.Suggestion != "" {
		msg += "; did you mean " + e.Suggestion + "?"
	}
	return msg
}

// Hint says what to do about it.
func (e *UnknownServiceError) Hint() string {
	if e.Filtered {
		return "some services were hidden by ACLs: the token may lack service:read on it"
	}
	return "microctl registry ls lists the services"
}

// CheckServices returns an UnknownServiceError for the first name in want
// that is not in known.
func CheckServices(want, known []string, filtered bool) error {
	set := map[string]bool{}
	for _, k := range known {
		set[k] = true
	}
	for _, w := range want {
		if !set[w] {
			return &UnknownServiceError{Name: w, Suggestion: Suggest(w, known), Filtered: filtered}
		}
	}
	return nil
}

// Suggest returns the known name closest to name, or "" when none is
// close. go-micro names are dotted (go.micro.srv.greeter), and people
// type the last part, so a name that ends with ".<name>" wins outright;
// otherwise the smallest edit distance within a third of the name's
// length (at least 2).
func Suggest(name string, known []string) string {
	lower := strings.ToLower(name)
	for _, k := range known {
		if strings.ToLower(k) == lower {
			return k
		}
	}
	for _, k := range known {
		if strings.HasSuffix(strings.ToLower(k), "."+lower) {
			return k
		}
	}
	best, bestD := "", max(2, len([]rune(name))/3)+1
	for _, k := range known {
		if d := editDistance(lower, strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// quote keeps a service name readable in a message even when it holds
// spaces or control characters.
func quote(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == '"' }) {
		return fmt.Sprintf("%q", s)
	}
	return s
}
