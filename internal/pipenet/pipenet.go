// Package pipenet is an in-memory network of net.Pipe connections, for
// tests that run under testing/synctest: a pipe blocks durably, so a fake
// clock can run the library's 30-second timeouts in no time.
package pipenet

import (
	"context"
	"net"
	"sync"
)

// Listener is a net.Listener whose Dial returns the other end of each
// accepted connection.
type Listener struct {
	addr      net.Addr
	conns     chan net.Conn
	closeOnce sync.Once
	closed    chan struct{}
}

// Listen returns a listener that reports addr as its address.
func Listen(addr net.Addr) *Listener {
	return &Listener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

// Accept waits for the next Dial.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops Accept and Dial.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

// Addr returns the address given to Listen.
func (l *Listener) Addr() net.Addr { return l.addr }

// Dial connects to the listener, blocking until Accept takes the connection.
func (l *Listener) Dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		return nil, &net.OpError{Op: "dial", Net: "pipe", Err: net.ErrClosed}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
