package msrp

import (
	"bytes"
	"testing"

	"context"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// placeAll feeds fragments of a message to place, as chunks would come,
// and returns the bytes written in order, or the first error.
func placeAll(in *incomingMessages, im *inMessage, frags []fragment) ([]byte, error) {
	var out []byte
	for _, f := range frags {
		segments, _, err := in.place(im, f.start, f.data)
		if err != nil {
			return out, err
		}
		for _, s := range segments {
			out = append(out, s...)
		}
	}
	return out, nil
}

func oneByteFragments(n int, reverse bool) ([]fragment, []byte) {
	want := make([]byte, n)
	frags := make([]fragment, n)
	for i := range n {
		want[i] = byte('a' + i%26)
		frags[i] = fragment{start: int64(i + 1), data: want[i : i+1 : i+1]}
	}
	if reverse {
		for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
			frags[i], frags[j] = frags[j], frags[i]
		}
	}
	return frags, want
}

func TestReassemblyHoldsFragmentsInOrder(t *testing.T) {
	var in incomingMessages
	in.init(&MessageConfig{MaxMessageSize: 64 << 20}, true)
	frags, want := oneByteFragments(20000, true) // the worst order: each one beyond the gap
	im := &inMessage{}
	got, err := placeAll(&in, im, frags)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got))
	assert.Zero(t, im.aheadN)
	assert.Empty(t, im.ahead)

	// Overlaps and duplicates: each byte is written once, in order.
	im = &inMessage{}
	data := []byte("0123456789")
	got, err = placeAll(&in, im, []fragment{
		{start: 5, data: data[4:8]}, {start: 5, data: data[4:8]}, {start: 7, data: data[6:10]},
		{start: 3, data: data[2:6]}, {start: 1, data: data[0:3]},
	})
	require.NoError(t, err)
	assert.Equal(t, "0123456789", string(got))
	assert.Zero(t, im.aheadN)
}

// What a held fragment costs counts towards the limit, not only its bytes:
// a peer that sends many tiny fragments beyond a gap is refused with 413
// once their bookkeeping would pass MaxMessageSize.
func TestReassemblyCountsWhatFragmentsCost(t *testing.T) {
	var in incomingMessages
	in.init(&MessageConfig{MaxMessageSize: 1000}, true)
	frags, _ := oneByteFragments(100, true)
	held := 0
	im := &inMessage{}
	for _, f := range frags {
		if _, _, err := in.place(im, f.start, f.data); err != nil {
			var te *TransactionError
			require.ErrorAs(t, err, &te)
			assert.Equal(t, 413, te.Code)
			break
		}
		held++
	}
	assert.Equal(t, 1000/(1+fragmentCost), held)
	assert.LessOrEqual(t, im.aheadN, int64(1000))
}

// sendPiece builds a SEND of message mid carrying data at
// byteRange, with flag, as a peer would send it.
func messagePiece(peer *MSRPTransport, mid, data, byteRange string, flag byte) *Chunk {
	c := peer.MakeRequest(MethodSEND)
	c.Headers = append(c.Headers,
		HeaderField{HeaderMessageID, mid},
		HeaderField{HeaderByteRange, byteRange},
		HeaderField{HeaderContentType, "text/plain"})
	c.Data = []byte(data)
	c.ContFlag = flag
	return c
}

// A last chunk ("$") that ends before bytes already received contradicts
// them and gets 400, as bytes after the last chunk do. Before, the message
// completed with Size 5 and 10 bytes of Data.
func TestReassemblyLastChunkEndsBeforeBytesReceived(t *testing.T) {
	for _, tc := range []struct {
		name, lastRange string
	}{
		{"total unknown", "1-5/*"},
		{"total told by the last chunk", "1-5/5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := newRecorder()
				_, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1, MessageConfig: MessageConfig{OnMessage: rec.onMessage}})
				resp := peerSendExpect(t, peer, messagePiece(peer, "mid12345", "0123456789", "1-10/*", FlagContinued))
				require.NotNil(t, resp)
				require.Equal(t, 200, resp.Code)
				resp = peerSendExpect(t, peer, messagePiece(peer, "mid12345", "01234", tc.lastRange, FlagEnd))
				require.NotNil(t, resp)
				synctest.Wait()
				_, msgs := rec.snapshot()
				if resp.Code == 200 {
					require.Len(t, msgs, 1)
					m := msgs[0]
					if m.Err == nil {
						assert.Equal(t, m.Size, int64(len(m.Data)), "a complete message of Size %d with %d bytes of Data", m.Size, len(m.Data))
						assert.Equal(t, m.Size, m.Received)
					}
				}
				assert.Equal(t, 400, resp.Code, "the last chunk ends the message before bytes already accepted")
			})
		})
	}
}

// A total below the bytes already received (the first chunk said "*") is
// refused; if it were taken, the message's failure REPORT would say
// "1-10/5", which the encoder refuses, and be lost. Before, the chunk got
// 200 and the REPORT was lost.
func TestReassemblyTotalBelowBytesReceived(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		_, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1, MessageConfig: MessageConfig{OnMessage: rec.onMessage}})
		resp := peerSendExpect(t, peer, messagePiece(peer, "mid12345", "0123456789", "1-10/*", FlagContinued))
		require.Equal(t, 200, resp.Code)
		resp = peerSendExpect(t, peer, messagePiece(peer, "mid12345", "0123", "1-4/5", FlagContinued))
		require.NotNil(t, resp)
		if resp.Code != 200 {
			return // refused: the total below the bytes received is caught
		}
		// A chunk naming another total fails the message: 400, and a
		// failure REPORT for the 10 bytes accepted.
		bad := messagePiece(peer, "mid12345", "xy", "21-22/30", FlagContinued)
		_, err := peer.netConn().Write(encodeUnchecked(bad))
		require.NoError(t, err)
		probe := peer.MakeRequest("PROBE")
		require.NoError(t, peer.WriteChunk(context.Background(), probe))
		var report *Chunk
		for {
			c := peerRead(t, peer)
			if c.Method == MethodREPORT {
				report = c
			}
			if c.TransactionID == probe.TransactionID {
				break
			}
		}
		require.NotNil(t, report, "the failure REPORT never came (Encode refused it)")
		br, err := report.ByteRange()
		assert.NoError(t, err)
		assert.Equal(t, int64(10), br.End)
	})
}

// The heap's accounting over a message that ends with fragments
// still held: duplicates of the held fragments cost again, so a peer that
// repeats one small chunk beyond a gap is refused after about
// MaxMessageSize/(len+128) repeats. Checked here: aheadN never goes
// negative and returns to zero once the gap is filled, even with
// overlapping duplicates of every size.
func TestReassemblyHeapAccountingWithOverlaps(t *testing.T) {
	var in incomingMessages
	in.init(&MessageConfig{MaxMessageSize: 1 << 20}, true)
	im := &inMessage{}
	data := make([]byte, 300)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	var frags []fragment
	// every window [s, s+l) for a few lengths, from the back, twice
	for rep := 0; rep < 2; rep++ {
		for s := 299; s >= 1; s -= 7 {
			for _, l := range []int{1, 5, 13} {
				if s+l <= 300 {
					frags = append(frags, fragment{start: int64(s + 1), data: data[s : s+l]})
				}
			}
		}
	}
	frags = append(frags, fragment{start: 1, data: data[0:2]})
	got, err := placeAll(&in, im, frags)
	require.NoError(t, err)
	assert.Equal(t, "ab", string(got))
	var held int64
	for _, f := range im.ahead {
		held += int64(len(f.data)) + fragmentCost
		assert.Greater(t, f.start, im.written+1)
	}
	assert.Equal(t, held, im.aheadN)
	// Filling the gap lets everything follow on, each byte once.
	rest, err := placeAll(&in, im, []fragment{{start: 291, data: data[290:300]}, {start: 3, data: data[2:5]}})
	require.NoError(t, err)
	assert.Equal(t, string(data), string(got)+string(rest))
	assert.Zero(t, im.aheadN)
	assert.Empty(t, im.ahead)
}

// For a message kept in memory, MaxMessageSize caps the bytes in order and
// the fragments held beyond a gap together. Before, each had the whole cap
// to itself: with a cap of 1000 and 999 bytes in, an 800-byte fragment was
// held as well.
func TestReassemblyInMemoryCapCountsHeldFragments(t *testing.T) {
	var in incomingMessages
	in.init(&MessageConfig{MaxMessageSize: 1000}, true)
	im := &inMessage{inMemory: true}
	_, err := placeAll(&in, im, []fragment{{start: 1, data: make([]byte, 999)}})
	require.NoError(t, err)
	_, _, err = in.place(im, 5000, make([]byte, 800))
	held := im.written + im.aheadN
	assert.Error(t, err, "the message holds %d bytes against a cap of 1000", held)
}

// A chunk whose total is "*" is checked against the size the message
// already has: bytes past it get 400. Before, they got 200 and were held
// beyond a gap that could never be filled, until the session ended.
func TestReassemblyChunkBeyondTheKnownSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		_, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1, MessageConfig: MessageConfig{OnMessage: rec.onMessage}})
		resp := peerSendExpect(t, peer, messagePiece(peer, "mid12345", "0123456789", "1-10/100", FlagContinued))
		require.Equal(t, 200, resp.Code)
		resp = peerSendExpect(t, peer, messagePiece(peer, "mid12345", "far away", "1000001-1000008/*", FlagContinued))
		require.NotNil(t, resp)
		assert.Equal(t, 400, resp.Code, "bytes 1000001-1000008 of a 100-byte message")
	})
}

// The last chunk ("$") arrives first, beyond a gap, with total "*": the
// message ends at byte 10. A later chunk that says the total is 20
// contradicts it and gets 400. Before, it was taken, and the message
// completed with Size 20 and 10 bytes of Data.
func TestReassemblyTotalAfterTheLastChunkMustMatchItsEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		_, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1, MessageConfig: MessageConfig{OnMessage: rec.onMessage}})
		resp := peerSendExpect(t, peer, messagePiece(peer, "mid12345", "56789", "6-10/*", FlagEnd))
		require.NotNil(t, resp)
		require.Equal(t, 200, resp.Code)
		resp = peerSendExpect(t, peer, messagePiece(peer, "mid12345", "01234", "1-5/20", FlagContinued))
		require.NotNil(t, resp)
		synctest.Wait()
		_, msgs := rec.snapshot()
		if resp.Code == 200 && len(msgs) == 1 && msgs[0].Err == nil {
			m := msgs[0]
			assert.Equal(t, m.Size, int64(len(m.Data)), "a complete message of Size %d with %d bytes of Data (%q)", m.Size, len(m.Data), m.Data)
		}
		assert.Equal(t, 400, resp.Code, "a total of 20 for a message whose last chunk ended at byte 10")
	})
}

// The same contradiction with the total known first (the last chunk then
// must end at it) is refused.
func TestReassemblyLastChunkBeforeTheKnownTotal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		_, peer := pipeSessionAndPeer(t, SessionConfig{KeepaliveInterval: -1, MessageConfig: MessageConfig{OnMessage: rec.onMessage}})
		resp := peerSendExpect(t, peer, messagePiece(peer, "mid12345", "01234", "1-5/20", FlagContinued))
		require.Equal(t, 200, resp.Code)
		resp = peerSendExpect(t, peer, messagePiece(peer, "mid12345", "56789", "6-10/*", FlagEnd))
		require.NotNil(t, resp)
		assert.Equal(t, 400, resp.Code)
	})
}
