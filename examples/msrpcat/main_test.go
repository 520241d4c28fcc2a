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

func TestTwoProcessesTalk(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			args := []string{"listen"}
			if useTLS {
				args = append(args, "--tls")
			}
			listener := start(t, args...)
			path := strings.TrimPrefix(listener.stderr.wait(t, "a=path:"), "a=path:")
			connectArgs := []string{"connect"}
			if useTLS {
				fp := strings.TrimPrefix(listener.stderr.wait(t, "a=fingerprint:"), "a=fingerprint:")
				connectArgs = append(connectArgs, "--tls-fingerprint", fp)
			}
			connector := start(t, append(connectArgs, strings.Fields(path)...)...)
			connector.stderr.wait(t, "session up")
			listener.stderr.wait(t, "session up")

			fmt.Fprintln(connector.stdin, "hello from the connector")
			listener.stdout.wait(t, "hello from the connector")
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
	path := strings.TrimPrefix(listener.stderr.wait(t, "a=path:"), "a=path:")
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
