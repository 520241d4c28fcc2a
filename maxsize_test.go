package msrp

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// MaxSize, our a=max-size, bounds every incoming message, streamed or not;
// PeerMaxSize, the peer's, bounds what we send.
func TestMaxSize(t *testing.T) {
	discard := func(*MSRPSession, *IncomingMessage) io.Writer { return io.Discard }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body := strings.Repeat("x", 2000)

	t.Run("a message announced larger is refused", func(t *testing.T) {
		a, b := startPair(t, SessionConfig{MessageConfig: MessageConfig{ChunkSize: 500}},
			SessionConfig{MessageConfig: MessageConfig{MaxSize: 1000, MessageWriter: discard}})
		_ = b
		m, err := a.SendMessage(strings.NewReader(body), int64(len(body)), "text/plain", MessageOptions{})
		require.NoError(t, err)
		var te *TransactionError
		require.ErrorAs(t, m.Wait(ctx), &te)
		assert.Equal(t, 413, te.Code)
	})
	t.Run("a message of unknown size that grows larger is refused", func(t *testing.T) {
		a, b := startPair(t, SessionConfig{MessageConfig: MessageConfig{ChunkSize: 500}},
			SessionConfig{MessageConfig: MessageConfig{MaxSize: 1000, MessageWriter: discard}})
		_ = b
		m, err := a.SendMessage(strings.NewReader(body), Unknown, "text/plain", MessageOptions{})
		require.NoError(t, err)
		var te *TransactionError
		require.ErrorAs(t, m.Wait(ctx), &te)
		assert.Equal(t, 413, te.Code)
	})
	t.Run("up to max-size is taken", func(t *testing.T) {
		a, b := startPair(t, SessionConfig{MessageConfig: MessageConfig{ChunkSize: 500, PeerMaxSize: 2000}},
			SessionConfig{MessageConfig: MessageConfig{MaxSize: 2000}})
		require.NoError(t, a.Send(ctx, "text/plain", []byte(body), MessageOptions{}))
		m, err := b.Receive(ctx)
		require.NoError(t, err)
		assert.Len(t, m.Data, 2000)
	})
	t.Run("we do not send past the peer's max-size", func(t *testing.T) {
		a, b := startPair(t, SessionConfig{MessageConfig: MessageConfig{ChunkSize: 500, PeerMaxSize: 1000}}, SessionConfig{})
		_, err := a.SendMessage(strings.NewReader(body), int64(len(body)), "text/plain", MessageOptions{})
		assert.ErrorIs(t, err, ErrMessageTooLarge)
		assert.ErrorIs(t, a.Send(ctx, "text/plain", []byte(body), MessageOptions{}), ErrMessageTooLarge)

		m, err := a.SendMessage(strings.NewReader(body), Unknown, "text/plain", MessageOptions{})
		require.NoError(t, err)
		assert.ErrorIs(t, m.Wait(ctx), ErrMessageTooLarge)
		got, err := b.Receive(ctx)
		assert.ErrorIs(t, err, ErrMessageAborted, "the peer sees the message end with #")
		require.NotNil(t, got)
		assert.LessOrEqual(t, got.Received, int64(1000))
	})
}
