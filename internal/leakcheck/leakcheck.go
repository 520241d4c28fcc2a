// Package leakcheck fails a test whose goroutines outlive it.
package leakcheck

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Check records the goroutines running now and, when the test ends, fails
// it if more are running than before, after giving them a moment to exit.
// Tests that use it must not run in parallel with others.
func Check(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				stacks := string(buf[:runtime.Stack(buf, true)])
				t.Errorf("%d goroutines leaked (%d before, %d after):\n%s", n-before, before, n, trim(stacks))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// trim keeps the report readable: stacks of the testing machinery are dropped.
func trim(stacks string) string {
	var keep []string
	for _, g := range strings.Split(stacks, "\n\n") {
		if !strings.Contains(g, "testing.tRunner") && !strings.Contains(g, "testing.(*T).Run") &&
			!strings.Contains(g, "testing.runTests") && !strings.Contains(g, "testing.(*M)") {
			keep = append(keep, g)
		}
	}
	return strings.Join(keep, "\n\n")
}
