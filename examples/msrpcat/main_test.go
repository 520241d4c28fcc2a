package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-msrp/msrp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// build compiles msrpcat once for the tests.
var build = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "msrpcat")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "msrpcat")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, out)
	}
	return bin, nil
})

// proc is a running msrpcat.
type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *lineReader
	stderr *lineReader
}

type lineReader struct {
	mu    sync.Mutex
	lines []string
	more  chan struct{}
}

func newLineReader(r io.Reader) *lineReader {
	l := &lineReader{more: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			l.mu.Lock()
			l.lines = append(l.lines, sc.Text())
			l.mu.Unlock()
			select {
			case l.more <- struct{}{}:
			default:
			}
		}
	}()
	return l
}

// wait returns the first line containing want.
func (l *lineReader) wait(t *testing.T, want string) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		l.mu.Lock()
		for _, line := range l.lines {
			if strings.Contains(line, want) {
				l.mu.Unlock()
				return line
			}
		}
		got := strings.Join(l.lines, "\n")
		l.mu.Unlock()
		select {
		case <-l.more:
		case <-deadline:
			t.Fatalf("no line with %q; got:\n%s", want, got)
		}
	}
}

func start(t *testing.T, args ...string) *proc {
	bin, err := build()
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	p := &proc{cmd: cmd}
	p.stdin, err = cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	p.stdout, p.stderr = newLineReader(stdout), newLineReader(stderr)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return p
}

func (p *proc) exitCode(t *testing.T) int {
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(20 * time.Second):
		t.Fatal("msrpcat did not exit")
		return -1
	}
}

// after returns what follows the first "marker" in line.
func after(line, marker string) string {
	_, rest, _ := strings.Cut(line, marker)
	return rest
}

func TestTwoProcessesTalk(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			args := []string{"listen"}
			if useTLS {
				args = append(args, "--tls")
			}
			listener := start(t, args...)
			path := after(listener.stderr.wait(t, "a=path:"), "a=path:")
			connectArgs := []string{"connect"}
			if useTLS {
				// As listen prints it, "a=fingerprint:" and all.
				fp := after(listener.stderr.wait(t, "a=fingerprint:"), "msrpcat: ")
				connectArgs = append(connectArgs, "--tls-fingerprint", fp)
			}
			connector := start(t, append(connectArgs, strings.Fields(path)...)...)
			// The connector's a=path port is not a listener, and it says so.
			connector.stderr.wait(t, "nothing listens on it")
			connector.stderr.wait(t, "session up")
			assert.Contains(t, listener.stderr.wait(t, "session up"), "connected from 127.0.0.1:", "the listener shows where the peer really is")

			fmt.Fprintln(connector.stdin, "hello from the connector")
			assert.Equal(t, "peer> hello from the connector", listener.stdout.wait(t, "hello from the connector"), "what arrives is marked")
			fmt.Fprintln(listener.stdin, "and hello back")
			connector.stdout.wait(t, "and hello back")

			// The end of stdin ends the session, and both exit cleanly.
			connector.stdin.Close()
			assert.Equal(t, 0, connector.exitCode(t))
			listener.stdin.Close()
			assert.Equal(t, 0, listener.exitCode(t))
		})
	}
}

func TestSendFile(t *testing.T) {
	data := make([]byte, 3<<20)
	rand.Read(data)
	name := filepath.Join(t.TempDir(), "photo.bin")
	require.NoError(t, os.WriteFile(name, data, 0o600))
	sum := fmt.Sprintf("%x", sha256.Sum256(data))

	listener := start(t, "listen")
	path := after(listener.stderr.wait(t, "a=path:"), "a=path:")
	connector := start(t, append([]string{"connect", "--file", name}, strings.Fields(path)...)...)
	assert.Contains(t, connector.stderr.wait(t, "sent photo.bin"), sum)
	assert.Contains(t, listener.stderr.wait(t, "received a file"), sum)
	connector.stdin.Close()
	assert.Equal(t, 0, connector.exitCode(t))
}

func TestBadArguments(t *testing.T) {
	bin, err := build()
	require.NoError(t, err)
	for _, args := range [][]string{
		{},
		{"dance"},
		{"listen", "--addr", "nonsense"},
		{"listen", "extra"},
		{"connect"},
		{"connect", "http://not-msrp"},
		{"connect", "--relay", "relay.example.com", "msrp://h/s;tcp"},
		{"connect", "--tls-fingerprint", "md5 00", "msrps://h/s;tcp"},
		{"connect", "--file", "/no/such/file", "msrp://h/s;tcp"},
		{"listen", "--no-such-flag"},
		{"listen", "--addr", "127.0.0.1:99999"},
		{"listen", "--addr", ":2855"},
		{"listen", "--tls-fingerprint", "sha-256 00"},
		{"listen", "--force"},
		{"listen", "--out", "/no/such/folder"},
		{"connect", "--relay-ca", "/etc/hostname", "msrp://h/s;tcp"},
		{"connect", "--relay", "msrps://u:p@relay.example.com", "--relay-ca", "/no/such/ca.pem", "msrp://h/s;tcp"},
		{"connect", "--tls-fingerprint", "a=fingerprint:sha-256 00", "msrps://h/s;tcp"},
	} {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		require.Error(t, err, "%v", args)
		assert.Equal(t, 2, cmd.ProcessState.ExitCode(), "%v", args)
		assert.True(t, strings.HasPrefix(stderr.String(), "msrpcat: "), "%v: %q", args, stderr.String())
	}
}

func TestInterrupt(t *testing.T) {
	listener := start(t, "listen")
	listener.stderr.wait(t, "a=path:")
	require.NoError(t, listener.cmd.Process.Signal(os.Interrupt))
	assert.Equal(t, 1, listener.exitCode(t), "interrupted before any peer came: it says so and fails")
}

// -h describes every flag and exits 0; an unknown flag shows the usage
// too, and exits 2.
func TestHelp(t *testing.T) {
	bin, err := build()
	require.NoError(t, err)
	for mode, flags := range map[string][]string{
		"listen":  {"-tls", "-addr", "-peer", "-tls-fingerprint", "-file", "-out", "-force", "-log"},
		"connect": {"-tls-fingerprint", "-relay", "-relay-ca", "-relay-fingerprint", "-file", "-out", "-force", "-log"},
	} {
		out, err := exec.Command(bin, mode, "-h").CombinedOutput()
		require.NoError(t, err, "%s -h exits 0: %s", mode, out)
		for _, f := range flags {
			assert.Contains(t, string(out), "  "+f, "%s -h describes %s", mode, f)
		}
		var stderr bytes.Buffer
		cmd := exec.Command(bin, mode, "--bogus")
		cmd.Stderr = &stderr
		require.Error(t, cmd.Run())
		assert.Equal(t, 2, cmd.ProcessState.ExitCode())
		assert.Contains(t, stderr.String(), "flag provided but not defined: -bogus")
		assert.Contains(t, stderr.String(), "usage: msrpcat "+mode)
	}
	out, err := exec.Command(bin, "-h").CombinedOutput()
	require.NoError(t, err)
	assert.Contains(t, string(out), "usage: msrpcat listen")
}

// The command listen prints to connect to it works pasted into a shell:
// the ";tcp" of a path is quoted.
func TestPrintedCommandWorksInAShell(t *testing.T) {
	bin, err := build()
	require.NoError(t, err)
	listener := start(t, "listen", "--tls")
	command := after(listener.stderr.wait(t, "to connect: "), "to connect: ")
	require.True(t, strings.HasPrefix(command, "msrpcat connect "))
	shell := exec.Command("sh", "-c", bin+strings.TrimPrefix(command, "msrpcat"))
	stdin, err := shell.StdinPipe()
	require.NoError(t, err)
	stderr := &bytes.Buffer{}
	shell.Stderr = stderr
	require.NoError(t, shell.Start())
	listener.stderr.wait(t, "session up")
	fmt.Fprintln(stdin, "through the shell")
	listener.stdout.wait(t, "through the shell")
	stdin.Close()
	require.NoError(t, shell.Wait(), stderr.String())
}

// Over TLS, each side can pin the other: listen --tls-fingerprint takes only
// the connector whose certificate it names, and says so for each one it
// refuses; a connector without the listener's fingerprint is told which
// flag it needs.
func TestTLSPinning(t *testing.T) {
	t.Run("the connector is pinned", func(t *testing.T) {
		good := start(t, "listen", "--tls") // a connector's certificate is fresh each run: learn it from one
		path := after(good.stderr.wait(t, "a=path:"), "a=path:")
		fp := after(good.stderr.wait(t, "a=fingerprint:"), "a=fingerprint:")
		c := start(t, "connect", "--tls-fingerprint", fp, path)
		connectorFP := after(c.stderr.wait(t, "our a=fingerprint:"), "our a=fingerprint:")
		c.stdin.Close()
		c.exitCode(t)

		pinned := start(t, "listen", "--tls", "--tls-fingerprint", connectorFP)
		path = after(pinned.stderr.wait(t, "a=path:"), "a=path:")
		fp = after(pinned.stderr.wait(t, "a=fingerprint:"), "a=fingerprint:")
		stranger := start(t, "connect", "--tls-fingerprint", fp, path)
		pinned.stderr.wait(t, "refused a connection from")
		stranger.stdin.Close()
		assert.NotEqual(t, 0, stranger.exitCode(t))
	})
	t.Run("a connector without the fingerprint gets a hint", func(t *testing.T) {
		listener := start(t, "listen", "--tls")
		path := after(listener.stderr.wait(t, "a=path:"), "a=path:")
		c := start(t, "connect", path)
		assert.Equal(t, 1, c.exitCode(t))
		c.stderr.wait(t, "pass it with --tls-fingerprint")
		listener.stderr.wait(t, "refused a connection from")
	})
}

// --out saves what arrives under the name its sender gave, never as a
// path, never over another file unless --force.
func TestOutSavesFiles(t *testing.T) {
	dir := t.TempDir()
	src := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(src, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	send := func(listenArgs []string, file string) string {
		listener := start(t, append([]string{"listen", "--out", dir}, listenArgs...)...)
		path := after(listener.stderr.wait(t, "a=path:"), "a=path:")
		c := start(t, "connect", "--file", file, path)
		saved := after(listener.stderr.wait(t, "saved as "), "saved as ")
		c.stdin.Close()
		assert.Equal(t, 0, c.exitCode(t))
		return saved
	}
	report := write("report.txt", "first")
	assert.Equal(t, filepath.Join(dir, "report.txt"), send(nil, report))
	require.NoError(t, os.WriteFile(report, []byte("second"), 0o600))
	assert.Equal(t, filepath.Join(dir, "report-1.txt"), send(nil, report), "no file is overwritten")
	require.NoError(t, os.WriteFile(report, []byte("third"), 0o600))
	assert.Equal(t, filepath.Join(dir, "report.txt"), send([]string{"--force"}, report), "unless asked")
	got, err := os.ReadFile(filepath.Join(dir, "report.txt"))
	require.NoError(t, err)
	assert.Equal(t, "third", string(got))
	got, err = os.ReadFile(filepath.Join(dir, "report-1.txt"))
	require.NoError(t, err)
	assert.Equal(t, "second", string(got))
}

// The name a file is saved under comes from the sender, and no path in it
// is trusted.
func TestSavedName(t *testing.T) {
	for disposition, want := range map[string]string{
		`attachment; filename="photo.jpg"`:        "photo.jpg",
		`attachment; filename="../../etc/passwd"`: "passwd",
		`attachment; filename="..\\..\\boot.ini"`: "boot.ini",
		`attachment; filename="/abs/path/x.bin"`:  "x.bin",
		`attachment; filename=".."`:               "msrp-m1234567",
		`attachment; filename=".hidden"`:          "msrp-m1234567",
		"attachment; filename=\"a\x01b\"":         "msrp-m1234567",
		`inline`:                                  "msrp-m1234567",
		``:                                        "msrp-m1234567",
	} {
		m := &msrp.IncomingMessage{MessageID: "m1234567", Headers: msrp.Header{{Name: "Content-Disposition", Value: disposition}}}
		assert.Equal(t, want, savedName(m), disposition)
	}
}

// listen --ws serves MSRP over WebSocket; connect reaches an a=path whose
// URI says ws over WebSocket, as a browser would, over ws and wss.
func TestWebSocket(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			args := []string{"listen", "--ws", "--ws-path", "/msrp"}
			if useTLS {
				args = append(args, "--tls")
			}
			listener := start(t, args...)
			url := after(listener.stderr.wait(t, "serving MSRP over WebSocket at"), "at ")
			assert.True(t, strings.HasPrefix(url, map[bool]string{false: "ws://", true: "wss://"}[useTLS]), url)
			path := after(listener.stderr.wait(t, "a=path:"), "a=path:")
			assert.Contains(t, path, ";ws")
			command := after(listener.stderr.wait(t, "to connect:"), "to connect: ")
			assert.Contains(t, command, "--ws-path '/msrp'")
			connectArgs := []string{"connect", "--ws-path", "/msrp"}
			if useTLS {
				fp := after(listener.stderr.wait(t, "a=fingerprint:"), "msrpcat: ")
				connectArgs = append(connectArgs, "--tls-fingerprint", fp)
			}
			connector := start(t, append(connectArgs, strings.Fields(path)...)...)
			assert.Contains(t, connector.stderr.wait(t, "our a=path:"), ".invalid:2855/", "a WebSocket client names itself in .invalid")
			connector.stderr.wait(t, "session up")
			listener.stderr.wait(t, "session up")

			fmt.Fprintln(connector.stdin, "hello over websocket")
			listener.stdout.wait(t, "peer> hello over websocket")
			fmt.Fprintln(listener.stdin, "and back")
			connector.stdout.wait(t, "peer> and back")

			connector.stdin.Close()
			assert.Equal(t, 0, connector.exitCode(t))
			listener.stdin.Close()
			assert.Equal(t, 0, listener.exitCode(t))
		})
	}
}
