package msrp

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// FileSelector is a=file-selector (RFC 5547 §6): what describes a file
// offered for transfer. An offer or answer has at least one selector.
type FileSelector struct {
	Name   string   // the file name, UTF-8; percent-encoded on the wire where the grammar needs
	Type   string   // its media type, "image/jpeg" or with parameters ("text/plain;charset=\"utf-8\"")
	Size   int64    // in octets; 0 when not given
	Hashes []string // "sha-1:72:24:5F:..." (upper-case hex in pairs); usually one
	Hash   string   // the first of Hashes, for the common case
}

// NewFileSelector describes a file by its name, type and contents: its
// size and SHA-1 hash, which RFC 5547 requires (§6).
func NewFileSelector(name, contentType string, data []byte) *FileSelector {
	sum := sha1.Sum(data)
	h := "sha-1:" + hexPairs(sum[:])
	return &FileSelector{Name: name, Type: contentType, Size: int64(len(data)), Hash: h, Hashes: []string{h}}
}

// hexPairs writes b as upper-case hex pairs separated by colons.
func hexPairs(b []byte) string {
	s := strings.ToUpper(hex.EncodeToString(b))
	var out strings.Builder
	for i := 0; i < len(s); i += 2 {
		if i > 0 {
			out.WriteByte(':')
		}
		out.WriteString(s[i : i+2])
	}
	return out.String()
}

// Matches reports whether data is the file the selector describes: its
// size and every SHA-1 hash that it gives agree.
func (f *FileSelector) Matches(data []byte) bool {
	if f.Size != 0 && int64(len(data)) != f.Size {
		return false
	}
	sum := sha1.Sum(data)
	want := "sha-1:" + hexPairs(sum[:])
	for _, h := range f.Hashes {
		alg, _, _ := strings.Cut(h, ":")
		if strings.EqualFold(alg, "sha-1") && !strings.EqualFold(h, want) {
			return false
		}
	}
	return true
}

// String is the attribute value: name, type, size and hashes that are set.
func (f *FileSelector) String() string {
	var parts []string
	if f.Name != "" {
		parts = append(parts, `name:"`+encodeFileName(f.Name)+`"`)
	}
	if f.Type != "" {
		parts = append(parts, "type:"+f.Type)
	}
	if f.Size > 0 {
		parts = append(parts, "size:"+strconv.FormatInt(f.Size, 10))
	}
	hashes := f.Hashes
	if len(hashes) == 0 && f.Hash != "" {
		hashes = []string{f.Hash}
	}
	for _, h := range hashes {
		parts = append(parts, "hash:"+h)
	}
	return strings.Join(parts, " ")
}

// encodeFileName percent-encodes what filename-char does not allow: NUL,
// LF, CR, '"' and '%'.
func encodeFileName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case 0, '\n', '\r', '"', '%':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// ParseFileSelector reads an a=file-selector value. A selector may appear
// once, hash more than once; a name must be quoted, valid UTF-8 once
// decoded, and non-empty; a hash must be hex pairs.
func ParseFileSelector(v string) (*FileSelector, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrSDPBadFileSelect, fmt.Sprintf(format, args...))
	}
	f := &FileSelector{}
	seen := map[string]bool{}
	for rest := strings.TrimSpace(v); rest != ""; rest = strings.TrimLeft(rest, " ") {
		kind, after, ok := strings.Cut(rest, ":")
		if !ok {
			return nil, bad("%q is not a selector", clip(rest))
		}
		if seen[kind] && kind != "hash" {
			return nil, bad("two %s selectors", kind)
		}
		seen[kind] = true
		var value string
		if kind == "name" {
			if !strings.HasPrefix(after, `"`) {
				return nil, bad("the name must be quoted")
			}
			end := strings.IndexByte(after[1:], '"')
			if end < 0 {
				return nil, bad("the name's quote is not closed")
			}
			value, rest = after[1:1+end], after[2+end:]
		} else {
			value, rest, _ = strings.Cut(after, " ")
		}
		switch kind {
		case "name":
			name, err := decodeFileName(value)
			if err != nil {
				return nil, bad("name: %v", err)
			}
			f.Name = name
		case "type":
			if !readableMediaType(strings.ReplaceAll(value, ";", "; ")) {
				return nil, bad("type %q is not a media type", value)
			}
			f.Type = value
		case "size":
			n, err := strconv.ParseInt(value, 10, 64)
			if !isDigits(value) || err != nil {
				return nil, bad("size %q is not a number of octets", value)
			}
			f.Size = n
		case "hash":
			alg, hexValue, ok := strings.Cut(value, ":")
			if !ok || !isToken(alg) || !isHexPairs(hexValue) {
				return nil, bad("hash %q: want <algorithm>:<hex pairs separated by colons>", value)
			}
			if strings.EqualFold(alg, "sha-1") && len(hexValue) != 59 {
				return nil, bad("a sha-1 hash has 20 octets")
			}
			f.Hashes = append(f.Hashes, value)
		default:
			return nil, bad("unknown selector %q", kind)
		}
	}
	if len(f.Hashes) > 0 {
		f.Hash = f.Hashes[0]
	}
	if seen["name"] && f.Name == "" {
		return nil, bad("empty name")
	}
	return f, nil
}

func decodeFileName(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) {
				return "", fmt.Errorf("%q: bad percent-encoding", s)
			}
			n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf("%q: bad percent-encoding", s)
			}
			b.WriteByte(byte(n))
			i += 2
		case c == 0 || c == '\n' || c == '\r':
			return "", fmt.Errorf("%q holds a control character", s)
		default:
			b.WriteByte(c)
		}
	}
	if !utf8.ValidString(b.String()) {
		return "", fmt.Errorf("%q is not UTF-8", s)
	}
	return b.String(), nil
}

func isHexPairs(s string) bool {
	if len(s) < 2 || (len(s)+1)%3 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i%3 == 2 {
			if c != ':' {
				return false
			}
		} else if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
