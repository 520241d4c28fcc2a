package msrp

import (
	"os"
	"testing"

	"github.com/go-msrp/msrp/internal/interop"
)

// TestMain runs the peer of a two-process benchmark when asked to, and
// says which interop tests were skipped: a passing go test ./...
// prints only "ok", and they skip quietly where their peers are not
// installed.
func TestMain(m *testing.M) {
	if mode := os.Getenv(benchPeerEnv); mode != "" { // a two-process benchmark's peer
		os.Exit(runBenchPeer(mode))
	}
	os.Exit(interop.Main(m, "msrp"))
}
