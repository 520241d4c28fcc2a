package msrp

import (
	"bytes"
	"fmt"
	"testing"
)

// benchChunk builds a SEND carrying size bytes of body; size 0 gives the
// small text SEND of a chat message (about 200 bytes on the wire).
func benchChunk(size int) *Chunk {
	body := []byte("Hi Bob, are you there?")
	total := len(body)
	if size > 0 {
		body = bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		total = size
	}
	return &Chunk{
		TransactionID: "f3a2b9c81d0e4a57b6c2", Method: "SEND", Data: body, ContFlag: FlagEnd,
		Headers: Header{
			{HeaderToPath, "msrp://127.0.0.1:2855/8c2a4f1b9d3e;tcp"},
			{HeaderFromPath, "msrp://127.0.0.1:40123/a1b2c3d4e5f6;tcp"},
			{HeaderMessageID, "6a080543fe1a5c50"},
			{HeaderByteRange, fmt.Sprintf("1-%d/%d", total, total)},
			{HeaderContentType, "text/plain"},
		},
	}
}

var benchSizes = []struct {
	name string
	size int
}{
	{"small", 0},
	{"2KiB", 2 << 10},
	{"64KiB", 64 << 10},
	{"4MiB", 4<<20 - 512}, // under the default 4 MiB cap with its headers
}

// BenchmarkParse feeds whole chunks to one Parser, as a reader would after a
// large read.
func BenchmarkParse(b *testing.B) {
	for _, bs := range benchSizes {
		raw, err := benchChunk(bs.size).Encode(nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bs.name, func(b *testing.B) {
			var p Parser
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				c, n, err := p.Feed(raw)
				if c == nil || err != nil || n != len(raw) {
					b.Fatal("no chunk", err)
				}
			}
		})
	}
}

// BenchmarkParseReads feeds chunks in 32 KiB pieces, the size of the
// transport's buffered reader, so that large bodies span many Feed calls.
func BenchmarkParseReads(b *testing.B) {
	for _, bs := range benchSizes[2:] {
		raw, err := benchChunk(bs.size).Encode(nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bs.name, func(b *testing.B) {
			var p Parser
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				var got *Chunk
				for rest := raw; len(rest) > 0; {
					c, n, err := p.Feed(rest[:min(len(rest), 32<<10)])
					if err != nil {
						b.Fatal(err)
					}
					rest = rest[n:]
					if c != nil {
						got = c
					}
				}
				if got == nil {
					b.Fatal("no chunk")
				}
			}
		})
	}
}

// BenchmarkCopyBaseline is the floor a parser that hands out owned bodies
// cannot beat: allocate a body-sized buffer and copy the bytes into it once.
func BenchmarkCopyBaseline(b *testing.B) {
	for _, bs := range benchSizes {
		raw, err := benchChunk(bs.size).Encode(nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bs.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				dst := make([]byte, len(raw))
				copy(dst, raw)
				if dst[0] != 'M' {
					b.Fatal("copy")
				}
			}
		})
	}
}

// BenchmarkEncode writes chunks into a reused buffer.
func BenchmarkEncode(b *testing.B) {
	for _, bs := range benchSizes {
		c := benchChunk(bs.size)
		b.Run(bs.name, func(b *testing.B) {
			buf, err := c.Encode(nil)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf, err = c.Encode(buf[:0])
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseURI(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseURI("msrps://relay.example.com:2855/hjdhfsesdf;tcp"); err != nil {
			b.Fatal(err)
		}
	}
}
