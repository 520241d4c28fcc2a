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

// With SIP, the relay is also a stateless SIP proxy: a request sent to it
// reaches its Request-URI with the proxy's Via on top and, for an INVITE,
// its Record-Route; the answer goes back by the Via. Start's probe has
// already had an OPTIONS for the proxy itself answered 200.
func TestStartWithSIP(t *testing.T) {
	if _, err := exec.LookPath("kamailio"); err != nil {
		t.Skip(ErrNotInstalled)
	}
	r, err := StartWith(Options{SIP: true})
	require.NoError(t, err)
	defer r.Stop()
	require.NotZero(t, r.SIPPort)
	assert.NotEqual(t, r.Port, r.SIPPort)
	assert.Equal(t, fmt.Sprintf("127.0.0.1:%d", r.SIPPort), r.SIPAddr())

	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			calleeAddr, calleeRead, calleeWrite := sipCallee(t, network)
			caller, err := net.Dial(network, r.SIPAddr())
			require.NoError(t, err)
			defer caller.Close()
			caller.SetDeadline(time.Now().Add(5 * time.Second))
			from := caller.LocalAddr().String()
			_, err = io.WriteString(caller, "INVITE sip:bob@"+calleeAddr+";transport="+network+" SIP/2.0\r\n"+
				"Via: SIP/2.0/"+strings.ToUpper(network)+" "+from+";branch=z9hG4bK-t1;rport\r\n"+
				"Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\n"+
				"Call-ID: t1@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@"+from+">\r\nContent-Length: 0\r\n\r\n")
			require.NoError(t, err)

			got := calleeRead()
			assert.True(t, strings.HasPrefix(got, "INVITE sip:bob@"+calleeAddr), got)
			assert.Contains(t, got, fmt.Sprintf("Record-Route: <sip:127.0.0.1:%d", r.SIPPort), "INVITEs are Record-Routed")
			var vias []string
			for _, line := range strings.Split(got, "\r\n") {
				if strings.HasPrefix(line, "Via:") {
					vias = append(vias, line)
				}
			}
			require.Len(t, vias, 2, got)
			assert.Contains(t, vias[0], fmt.Sprintf("127.0.0.1:%d", r.SIPPort), "the proxy's Via on top")

			calleeWrite("SIP/2.0 486 Busy Here\r\n" + strings.Join(vias, "\r\n") + "\r\n" +
				"From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>;tag=b1\r\nCall-ID: t1@127.0.0.1\r\n" +
				"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
			buf := make([]byte, 4096)
			n, err := caller.Read(buf)
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(string(buf[:n]), "SIP/2.0 486 Busy Here"), string(buf[:n]))
		})
	}

	plain, err := Start(false, 0)
	require.NoError(t, err)
	defer plain.Stop()
	assert.Zero(t, plain.SIPPort)
	assert.Empty(t, plain.SIPAddr())
}

// sipCallee listens on loopback over network, and returns its address, a
// function that reads the next message (one datagram, or one read of the
// proxy's connection: the messages are small), and one that answers on the
// way it came.
func sipCallee(t *testing.T, network string) (string, func() string, func(string)) {
	t.Helper()
	buf := make([]byte, 4096)
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { pc.Close() })
		pc.SetDeadline(time.Now().Add(5 * time.Second))
		var from net.Addr
		return pc.LocalAddr().String(), func() string {
				var n int
				n, from, err = pc.ReadFrom(buf)
				require.NoError(t, err)
				return string(buf[:n])
			}, func(msg string) {
				_, err := pc.WriteTo([]byte(msg), from)
				require.NoError(t, err)
			}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	var conn net.Conn
	return ln.Addr().String(), func() string {
			ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
			conn, err = ln.Accept()
			require.NoError(t, err)
			t.Cleanup(func() { conn.Close() })
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			n, err := conn.Read(buf)
			require.NoError(t, err)
			return string(buf[:n])
		}, func(msg string) {
			_, err := io.WriteString(conn, msg)
			require.NoError(t, err)
		}
}
