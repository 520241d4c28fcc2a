package testrelay

import (
	"errors"
	"os"
	"testing"
)

// ForTest starts a relay that stops when t ends, and prints its log if t
// failed. Without kamailio installed t is skipped, after skipped(err) if
// that is not nil, unless CI is set: there the interop tests must run, so
// it is a failure.
func ForTest(t testing.TB, useTLS bool, skipped func(error)) *Relay {
	t.Helper()
	return ForTestWith(t, Options{TLS: useTLS}, skipped)
}

// ForTestWith is ForTest for a relay that o describes; without its
// websocket module, when o asks for one, t is skipped or fails alike.
func ForTestWith(t testing.TB, o Options, skipped func(error)) *Relay {
	t.Helper()
	r, err := StartWith(o)
	if errors.Is(err, ErrNotInstalled) {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v, and CI needs the relay interop tests: see .ci/run", err)
		}
		if skipped != nil {
			skipped(err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kamailio log:\n%s", r.Log())
		}
		r.Stop()
	})
	return r
}
