package testrelay

import (
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Start fails when kamailio cannot have the port: it asks the relay for an
// AUTH and expects its 401. Before, any listener on the port (another
// program, or one that won the race after freePort) passed for kamailio,
// which had exited, and the tests talked to a stranger.
func TestStartFailsWhenThePortIsTaken(t *testing.T) {
	if _, err := exec.LookPath("kamailio"); err != nil {
		t.Skip(ErrNotInstalled)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	r, err := Start(false, port)
	if err == nil {
		defer r.Stop()
		select {
		case <-r.Done():
			t.Logf("kamailio exited:\n%s", r.Log())
		case <-time.After(3 * time.Second):
		}
	}
	assert.Error(t, err, "Start returned a relay on port %d, which another listener holds", port)
}
