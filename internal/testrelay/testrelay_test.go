package testrelay

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
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

// With WebSocket, the relay has a second listener, where kamailio's
// websocket module answers a handshake that offers the msrp subprotocol
// with 101 (Start's probe), and one that does not with 400.
func TestStartWithWebSocket(t *testing.T) {
	if _, err := exec.LookPath("kamailio"); err != nil || !hasModule("websocket.so") {
		t.Skip(ErrNoWebSocket)
	}
	r, err := StartWith(Options{WebSocket: true})
	require.NoError(t, err)
	defer r.Stop()
	assert.NotZero(t, r.WSPort)
	assert.NotEqual(t, r.Port, r.WSPort)
	assert.Equal(t, fmt.Sprintf("ws://alice:xyz123@127.0.0.1:%d", r.WSPort), r.WSURL())

	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.WSPort), time.Second)
	require.NoError(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	_, err = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n")
	require.NoError(t, err)
	line, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(line, "HTTP/1.1 400"), "a handshake without msrp: %q", line)

	plain, err := Start(false, 0)
	require.NoError(t, err)
	defer plain.Stop()
	assert.Zero(t, plain.WSPort)
	assert.Empty(t, plain.WSURL())
}

// Without the websocket module, StartWith says what to install, and the
// tests skip (or fail under CI) as they do without kamailio.
func TestStartWithWebSocketModuleMissing(t *testing.T) {
	if _, err := exec.LookPath("kamailio"); err != nil {
		t.Skip(ErrNotInstalled)
	}
	saved := moduleDirs
	moduleDirs = []string{t.TempDir() + "/"}
	defer func() { moduleDirs = saved }()
	_, err := StartWith(Options{WebSocket: true})
	require.ErrorIs(t, err, ErrNoWebSocket)
	assert.ErrorIs(t, err, ErrNotInstalled)
	assert.Contains(t, err.Error(), "kamailio-websocket-modules")
}
