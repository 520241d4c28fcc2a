// Package interop is what the tests against real peers (Kamailio, tshark,
// Chromium) share: they skip where their peer is not installed, except
// under CI, and each test package's TestMain says which were skipped, as a
// passing go test ./... prints only "ok".
package interop

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var skipped struct {
	mu  sync.Mutex
	why map[string]string
}

// Skipped records that an interop test could not run, and why.
func Skipped(what, why string) {
	skipped.mu.Lock()
	defer skipped.mu.Unlock()
	if skipped.why == nil {
		skipped.why = map[string]string{}
	}
	skipped.why[what] = why
}

// Main runs the package's tests, then tells the user which interop tests
// were skipped, naming the package pkg; it returns m.Run's code, for
// os.Exit in TestMain.
func Main(m *testing.M, pkg string) int {
	code := m.Run()
	skipped.mu.Lock()
	var lines []string
	for what, why := range skipped.why {
		lines = append(lines, what+" ("+why+")")
	}
	skipped.mu.Unlock()
	if len(lines) > 0 {
		slices.Sort(lines)
		tellUser(pkg + ": skipped " + strings.Join(lines, "; "))
	}
	return code
}

// Tool returns the path of the first of names that is installed. With
// none, the test fails under CI (the CI variable set), which must run it;
// elsewhere it is recorded as skipped and skips, with hint saying how to
// install the tool.
func Tool(t testing.TB, what, hint string, names ...string) string {
	t.Helper()
	for _, name := range names {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed, and CI needs %s: %s", names[0], what, hint)
	}
	Skipped(what, names[0]+" is not installed: "+hint)
	t.Skipf("%s is not installed; to run %s: %s", names[0], what, hint)
	return ""
}

// tellUser writes a line where the person running the tests sees it: go
// test keeps the output of a passing package to itself, so the terminal,
// when there is one, else the output that -v shows.
func tellUser(line string) {
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		fmt.Fprintln(tty, line)
		tty.Close()
		return
	}
	fmt.Fprintln(os.Stderr, line)
}

// Capture has tshark capture the loopback packets that filter (a capture
// filter) matches into file, from the moment it says it captures, and
// returns a function that stops it and waits for it to write file.
func Capture(t testing.TB, tshark, filter, file string) (stop func()) {
	t.Helper()
	cmd := exec.Command(tshark, "-i", "lo", "-f", filter, "-w", file)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Capturing on") {
				close(ready)
				break
			}
		}
		for sc.Scan() { // keep the pipe drained
		}
	}()
	select {
	case <-ready:
		time.Sleep(time.Second) // it says so a moment before it does
	case <-time.After(30 * time.Second):
		t.Fatal("tshark did not start capturing")
	}
	return func() {
		t.Helper()
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
	}
}
