package msrp

import (
	"bytes"
	"testing"

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
	in.init(&MessageConfig{MaxMessageSize: 64 << 20})
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
	in.init(&MessageConfig{MaxMessageSize: 1000})
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
