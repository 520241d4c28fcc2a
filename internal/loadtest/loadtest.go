// Package loadtest holds the exchanges that the benchmarks of the
// transports run over a session pair, so that each transport is measured
// doing the same thing as the TCP baseline beside it.
package loadtest

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/go-msrp/msrp"
)

// Discard is a session configuration whose incoming messages go to
// io.Discard, for the receiving end of Bulk.
var Discard = msrp.SessionConfig{MessageConfig: msrp.MessageConfig{
	MessageWriter: func(*msrp.MSRPSession, *msrp.IncomingMessage) io.Writer { return io.Discard },
}}

// Bulk sends one message of size zero bytes from one session to the other
// and returns how long it took until it was answered and received whole.
// The receiver should stream it away (Discard).
func Bulk(from, to *msrp.MSRPSession, size int64) (time.Duration, error) {
	ctx := context.Background()
	start := time.Now()
	m, err := from.SendMessage(io.LimitReader(zeros{}, size), size, "application/octet-stream", msrp.MessageOptions{})
	if err != nil {
		return 0, err
	}
	if err := m.Wait(ctx); err != nil {
		return 0, err
	}
	got, err := to.Receive(ctx)
	if err != nil {
		return 0, err
	}
	if got.Received != size {
		return 0, fmt.Errorf("received %d bytes of %d", got.Received, size)
	}
	return time.Since(start), nil
}

// Pipelined sends n 100-byte SENDs from one session to the other, from
// inFlight goroutines that each wait for their 200, while the receiver
// takes each message with Receive; it returns how long they took.
func Pipelined(from, to *msrp.MSRPSession, n, inFlight int) (time.Duration, error) {
	ctx := context.Background()
	go func() {
		for {
			if _, err := to.Receive(ctx); err != nil {
				return
			}
		}
	}()
	t := from.Transport()
	body := make([]byte, 100)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, inFlight)
	for w := range inFlight {
		wg.Go(func() {
			for i := w; i < n; i += inFlight {
				c := t.MakeSendRequest("", body, 1, 0)
				c.Headers.Set(msrp.HeaderContentType, "text/plain")
				if _, err := from.DeliverChunk(ctx, c); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return time.Since(start), <-errs
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
