package msrp

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The interop tests that could not run, and why, for TestMain's summary.
var skipped struct {
	mu  sync.Mutex
	why map[string]string
}

// skippedInterop records that an interop test could not run.
func skippedInterop(what, why string) {
	skipped.mu.Lock()
	defer skipped.mu.Unlock()
	if skipped.why == nil {
		skipped.why = map[string]string{}
	}
	skipped.why[what] = why
}

// TestMain runs the peer of a two-process benchmark when asked to, and
// says which interop tests were skipped: a passing go test ./...
// prints only "ok", and they skip quietly where their peers are not
// installed.
func TestMain(m *testing.M) {
	if mode := os.Getenv(benchPeerEnv); mode != "" { // a two-process benchmark's peer
		os.Exit(runBenchPeer(mode))
	}
	code := m.Run()
	skipped.mu.Lock()
	var lines []string
	for what, why := range skipped.why {
		lines = append(lines, what+" ("+why+")")
	}
	skipped.mu.Unlock()
	if len(lines) > 0 {
		slices.Sort(lines)
		tellUser("msrp: skipped " + strings.Join(lines, "; "))
	}
	os.Exit(code)
}

// tellUser writes a line where the person running the tests sees it: go test
// keeps the output of a passing package to itself, so the terminal, when
// there is one, else the output that -v shows.
func tellUser(line string) {
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		fmt.Fprintln(tty, line)
		tty.Close()
		return
	}
	fmt.Fprintln(os.Stderr, line)
}
