package msrp

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"
)

// Header names defined by RFC 4975, RFC 4976 and RFC 7701, spelled as they
// are written on the wire. Lookups are case-insensitive.
const (
	HeaderToPath             = "To-Path"
	HeaderFromPath           = "From-Path"
	HeaderMessageID          = "Message-ID"
	HeaderByteRange          = "Byte-Range"
	HeaderStatus             = "Status"
	HeaderSuccessReport      = "Success-Report"
	HeaderFailureReport      = "Failure-Report"
	HeaderContentType        = "Content-Type"
	HeaderExpires            = "Expires"
	HeaderMinExpires         = "Min-Expires"
	HeaderMaxExpires         = "Max-Expires"
	HeaderUsePath            = "Use-Path"
	HeaderWWWAuthenticate    = "WWW-Authenticate"
	HeaderAuthorization      = "Authorization"
	HeaderAuthenticationInfo = "Authentication-Info"
	HeaderUseNickname        = "Use-Nickname"
)

// Methods of RFC 4975, RFC 4976 and RFC 7701.
const (
	MethodSEND     = "SEND"
	MethodREPORT   = "REPORT"
	MethodAUTH     = "AUTH"
	MethodNICKNAME = "NICKNAME"
)

// Continuation flags that end a chunk (RFC 4975 §7.1).
const (
	FlagEnd       byte = '$' // last chunk of the message
	FlagContinued byte = '+' // more chunks of the message follow
	FlagAborted   byte = '#' // the sender gave up on the message
)

// HeaderField is one header line.
type HeaderField struct {
	Name, Value string
}

// Header is a chunk's header lines in the order they were received or added.
// Names are matched case-insensitively; a name may repeat, in which case Get
// returns the first.
type Header []HeaderField

// Get returns the value of the first header with the given name, or "".
func (h Header) Get(name string) string {
	v, _ := h.Lookup(name)
	return v
}

// Lookup returns the value of the first header with the given name and
// whether there is one.
func (h Header) Lookup(name string) (string, bool) {
	for i := range h {
		if strings.EqualFold(h[i].Name, name) {
			return h[i].Value, true
		}
	}
	return "", false
}

// Set replaces the value of the first header with this name and removes any
// later ones, or appends the header if it is absent.
func (h *Header) Set(name, value string) {
	for i := range *h {
		if strings.EqualFold((*h)[i].Name, name) {
			(*h)[i].Value = value
			rest := (*h)[i+1:]
			rest.del(name)
			*h = (*h)[:i+1+len(rest)]
			return
		}
	}
	h.Add(name, value)
}

// Add appends a header line, keeping any earlier ones of the same name.
func (h *Header) Add(name, value string) {
	*h = append(*h, HeaderField{Name: name, Value: value})
}

// Del removes every header with this name.
func (h *Header) Del(name string) {
	*h = (*h)[:h.del(name)]
}

// del compacts the slice in place and returns the new length.
func (h *Header) del(name string) int {
	n := 0
	for _, f := range *h {
		if !strings.EqualFold(f.Name, name) {
			(*h)[n] = f
			n++
		}
	}
	clear((*h)[n:])
	*h = (*h)[:n]
	return n
}

// Chunk is one MSRP request or response (RFC 4975 §7): msrplib's MSRPData.
// A request has a Method; a response has a Code (and Method is empty).
//
// Header values are kept as the strings received and decoded on demand by
// the typed accessors (ToPath, ByteRange, ...), which return a *HeaderError
// for a missing or malformed value. A bad value therefore never stops a chunk
// from being read: the receiver decides, typically answering 400.
type Chunk struct {
	TransactionID string
	Method        string // request method, e.g. "SEND"; empty for a response
	Code          int    // response status code; 0 for a request
	Comment       string // response reason phrase, may be empty
	Headers       Header // in wire order; To-Path and From-Path are written first
	Data          []byte // body; nil when there is none
	ContFlag      byte   // FlagEnd, FlagContinued or FlagAborted; 0 is written as FlagEnd
}

// NewRequest returns a request with a fresh transaction id, the given paths
// and the end flag. Add the other headers with c.Headers.Set.
func NewRequest(method string, toPath, fromPath []URI) *Chunk {
	return &Chunk{
		TransactionID: NewTransactionID(),
		Method:        method,
		Headers: Header{
			{HeaderToPath, FormatPath(toPath)},
			{HeaderFromPath, FormatPath(fromPath)},
		},
		ContFlag: FlagEnd,
	}
}

// NewResponse builds the response to a request (RFC 4975 §7.2, with
// msrplib's path rules): same transaction id; To-Path is the first URI of the
// request's From-Path for a SEND (the previous hop) and the whole From-Path
// for any other method; From-Path is the first URI of the request's To-Path.
// An empty comment is filled in from StatusText; control characters in
// it become spaces, bytes that are not UTF-8 become U+FFFD, and it is cut
// to 1 KiB.
//
// It only builds: whether a response may be sent at all depends on the
// request's Failure-Report, which ResponseWanted tells.
func NewResponse(req *Chunk, code int, comment string) (*Chunk, error) {
	return newResponse(req, code, comment, nil)
}

func newResponse(req *Chunk, code int, comment string, memo *validMemo) (*Chunk, error) {
	if !req.IsRequest() {
		return nil, fmt.Errorf("%w: cannot respond to a response", ErrInvalidChunk)
	}
	to, err := responsePath(req, HeaderFromPath, req.Method != MethodSEND, memo)
	if err != nil {
		return nil, err
	}
	from, err := responsePath(req, HeaderToPath, false, memo)
	if err != nil {
		return nil, err
	}
	return responseChunk(req.TransactionID, code, comment, to, from), nil
}

func responseChunk(tid string, code int, comment, toPath, fromPath string) *Chunk {
	if comment == "" {
		comment = StatusText(code)
	}
	return &Chunk{
		TransactionID: tid,
		Code:          code,
		Comment:       cleanComment(comment),
		Headers:       Header{{HeaderToPath, toPath}, {HeaderFromPath, fromPath}},
		ContFlag:      FlagEnd,
	}
}

// responsePath returns the request's path header, whole or its first URI,
// as text for a response. Text already in the form RFC 4975 §9 gives (one
// space between URIs) is taken as it stands; anything else is parsed and
// written anew, so that a response never carries a peer's stray
// whitespace, and a path that does not parse is an error.
func responsePath(req *Chunk, name string, whole bool, memo *validMemo) (string, error) {
	v, ok := req.Headers.Lookup(name)
	if !ok {
		return "", missingHeader(name)
	}
	first, _, _ := strings.Cut(v, " ")
	if whole && looksLikeMSRPURI(first) && memo.check(memoPath, v, validPathValue) {
		return v, nil
	}
	if !whole && looksLikeMSRPURI(first) && memo.check(memoPath, first, validPathValue) {
		return first, nil
	}
	path, err := ParsePath(v)
	if err != nil {
		return "", invalidHeader(name, v, err.Error())
	}
	if whole {
		return FormatPath(path), nil
	}
	return path[0].String(), nil
}

// looksLikeMSRPURI is a cheap test for the common case: a scheme and a
// transport, no spaces.
func looksLikeMSRPURI(s string) bool {
	_, ok := cutPrefixFold(s, "msrp://")
	if !ok {
		_, ok = cutPrefixFold(s, "msrps://")
	}
	return ok && strings.IndexByte(s, ';') > 0
}

// IsRequest reports whether the chunk is a request.
func (c *Chunk) IsRequest() bool { return c.Method != "" }

// ResponseWanted reports whether a transaction response with this code may
// be sent for the request (RFC 4975 §7.1.2, §7.2): never for a REPORT, never
// when Failure-Report is "no", only a negative one when it is "partial".
// A malformed Failure-Report counts as its default, "yes", so that the
// sender hears about the error.
func (c *Chunk) ResponseWanted(code int) bool {
	if !c.IsRequest() || c.Method == MethodREPORT {
		return false
	}
	fr, err := c.FailureReport()
	if err != nil {
		return true
	}
	switch fr {
	case FailureReportNo:
		return false
	case FailureReportPartial:
		return code != 200
	}
	return true
}

// Clone returns a deep copy of the chunk.
func (c *Chunk) Clone() *Chunk {
	d := *c
	d.Headers = append(Header(nil), c.Headers...)
	if c.Data != nil {
		d.Data = append([]byte(nil), c.Data...)
	}
	return &d
}

// String returns the start line, "MSRP tid METHOD" or "MSRP tid CODE comment".
func (c *Chunk) String() string {
	return string(c.appendStartLine(nil))
}

func (c *Chunk) appendStartLine(b []byte) []byte {
	b = append(b, "MSRP "...)
	b = append(b, c.TransactionID...)
	b = append(b, ' ')
	if c.IsRequest() {
		return append(b, c.Method...)
	}
	b = appendCode(b, c.Code)
	if c.Comment != "" {
		b = append(b, ' ')
		b = append(b, c.Comment...)
	}
	return b
}

// Encode appends the chunk in wire form to dst and returns the extended
// buffer, in the order RFC 4975 §9 gives: start line, To-Path, From-Path,
// the other headers in order, then, when there is a body or a
// Content-Type, the MIME headers of the body (Content-ID,
// Content-Description, Content-Disposition and any other Content-*),
// Content-Type last, a blank line, the body and a CRLF; and finally the
// end-line "-------tid<flag>". It allocates nothing when dst has room and
// the chunk has at most 32 headers.
//
// It writes valid MSRP or nothing. It refuses (ErrInvalidChunk) a chunk
// whose fields cannot be written or break the grammar: a header value
// holding CR or LF or bytes that are not UTF-8, a missing or repeated
// To-Path or From-Path, a malformed value of a header that RFC 4975 or RFC
// 4976 defines, a SEND whose Byte-Range disagrees with its body, a body
// without a Content-Type, or a response with a body. It refuses
// (ErrBodyContainsEndLine) a body that holds the chunk's own end-line,
// which would cut it short on the wire.
func (c *Chunk) Encode(dst []byte) ([]byte, error) {
	b, err := c.appendHead(dst, false, nil)
	if err != nil {
		return dst, err
	}
	b = append(b, c.Data...)
	return c.appendTail(b), nil
}

// check tells whether Encode would write the chunk, and if not why,
// without encoding it.
func (c *Chunk) check(memo *validMemo) error {
	var kindsBuf [32]headerKind
	return c.validate(c.headerKinds(kindsBuf[:0]), memo)
}

func (c *Chunk) headerKinds(kinds []headerKind) []headerKind {
	for _, f := range c.Headers {
		kinds = append(kinds, kindOf(f.Name))
	}
	return kinds
}

// appendHead validates the chunk, unless it was checked already, and
// appends everything before the body.
func (c *Chunk) appendHead(dst []byte, checked bool, memo *validMemo) ([]byte, error) {
	var kindsBuf [32]headerKind
	kinds := c.headerKinds(kindsBuf[:0])
	if !checked {
		if err := c.validate(kinds, memo); err != nil {
			return dst, err
		}
	}
	b := c.appendStartLine(dst)
	b = append(b, '\r', '\n')
	body := c.hasBodySection()
	for _, place := range [...]headerPlace{placePath, placeFromPath, placeOther, placeMIME, placeContentType} {
		if !body && place > placeOther {
			break
		}
		for i, f := range c.Headers {
			if kinds[i].place(body) == place {
				b = appendHeaderLine(b, f)
			}
		}
	}
	if body {
		b = append(b, '\r', '\n')
	}
	return b, nil
}

// headerPlace is where a header goes in an encoded chunk.
type headerPlace uint8

const (
	placePath headerPlace = iota // To-Path
	placeFromPath
	placeOther
	placeMIME        // Content-* but Content-Type, before a body
	placeContentType // last before a body
)

// placeOf says where a header goes; without a body section, MIME headers
// are ordinary ones.
func placeOf(name string, body bool) headerPlace { return kindOf(name).place(body) }

func (k headerKind) place(body bool) headerPlace {
	switch {
	case k == kindToPath:
		return placePath
	case k == kindFromPath:
		return placeFromPath
	case !body:
		return placeOther
	case k == kindContentType:
		return placeContentType
	case k == kindMIME:
		return placeMIME
	}
	return placeOther
}

// headerKind tells the headers that RFC 4975 and RFC 4976 give a grammar
// (each of which a chunk carries at most once) from the MIME headers of a
// body and from all others.
type headerKind uint8

const (
	kindOther headerKind = iota
	kindMIME             // Content-* but Content-Type
	kindToPath
	kindFromPath
	kindUsePath
	kindMessageID
	kindByteRange
	kindStatus
	kindSuccessReport
	kindFailureReport
	kindContentType
	kindExpires
	kindMinExpires
	kindMaxExpires
)

// kindOf names a header's kind, by its length first, without allocating.
func kindOf(name string) headerKind {
	is := func(s string) bool { return strings.EqualFold(name, s) }
	switch len(name) {
	case 6:
		if is(HeaderStatus) {
			return kindStatus
		}
	case 7:
		switch {
		case is(HeaderToPath):
			return kindToPath
		case is(HeaderExpires):
			return kindExpires
		}
	case 8:
		if is(HeaderUsePath) {
			return kindUsePath
		}
	case 9:
		if is(HeaderFromPath) {
			return kindFromPath
		}
	case 10:
		switch {
		case is(HeaderMessageID):
			return kindMessageID
		case is(HeaderByteRange):
			return kindByteRange
		}
	case 11:
		switch {
		case is(HeaderMinExpires):
			return kindMinExpires
		case is(HeaderMaxExpires):
			return kindMaxExpires
		}
	case 12:
		if is(HeaderContentType) {
			return kindContentType
		}
	case 14:
		switch {
		case is(HeaderSuccessReport):
			return kindSuccessReport
		case is(HeaderFailureReport):
			return kindFailureReport
		}
	}
	if len(name) > 8 && strings.EqualFold(name[:8], "Content-") {
		return kindMIME
	}
	return kindOther
}

// valid checks a value against the grammar of its header's kind; memo, if
// not nil, remembers the paths and media types found valid.
func (k headerKind) valid(v string, memo *validMemo) bool {
	switch k {
	case kindToPath, kindFromPath, kindUsePath:
		return memo.check(memoPath, v, validPathValue)
	case kindContentType:
		return memo.check(memoMediaType, v, validMediaType)
	case kindMessageID:
		return validIdent(v)
	case kindByteRange:
		_, reason := parseByteRange(v)
		return reason == ""
	case kindStatus:
		return validStatusValue(v)
	case kindSuccessReport:
		return strings.EqualFold(v, "yes") || strings.EqualFold(v, "no")
	case kindFailureReport:
		return strings.EqualFold(v, "yes") || strings.EqualFold(v, "no") || strings.EqualFold(v, "partial")
	case kindExpires, kindMinExpires, kindMaxExpires:
		return isDigits(v)
	}
	return true
}

// validMemo remembers a few header values found valid, so that a
// connection that writes and reads the same paths and media type in every
// chunk parses each once rather than once per chunk. A nil memo remembers
// nothing. It is safe for concurrent use.
type validMemo struct {
	next    atomic.Uint32
	entries [4]atomic.Pointer[memoEntry]
}

type memoKind uint8

const (
	memoPath          memoKind = iota // validPathValue
	memoMediaType                     // validMediaType: as we write it
	memoReadableMedia                 // readableMediaType: as we read it
)

type memoEntry struct {
	kind  memoKind
	value string
}

// check tells whether valid(v) holds, remembering a value that passed.
func (m *validMemo) check(kind memoKind, v string, valid func(string) bool) bool {
	if m == nil {
		return valid(v)
	}
	for i := range m.entries {
		if e := m.entries[i].Load(); e != nil && e.kind == kind && e.value == v {
			return true
		}
	}
	if !valid(v) {
		return false
	}
	// A copy: v may be part of a chunk's header block, which the memo
	// should not keep alive.
	e := &memoEntry{kind: kind, value: strings.Clone(v)}
	m.entries[m.next.Add(1)%uint32(len(m.entries))].Store(e)
	return true
}

// appendTail appends what follows the body: its CRLF and the end-line.
func (c *Chunk) appendTail(b []byte) []byte {
	if c.hasBodySection() {
		b = append(b, '\r', '\n')
	}
	b = append(b, "-------"...)
	b = append(b, c.TransactionID...)
	return append(b, c.flag(), '\r', '\n')
}

// hasBodySection: a body, or a Content-Type announcing an empty one, is
// framed by a blank line before it and a CRLF after it (RFC 4975 §7.1).
func (c *Chunk) hasBodySection() bool {
	if len(c.Data) > 0 {
		return true
	}
	_, ok := c.Headers.Lookup(HeaderContentType)
	return ok
}

// flag returns the continuation flag to write; zero means FlagEnd.
func (c *Chunk) flag() byte {
	if c.ContFlag == 0 {
		return FlagEnd
	}
	return c.ContFlag
}

func (h Header) appendNamed(b []byte, name string) []byte {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			b = appendHeaderLine(b, f)
		}
	}
	return b
}

func appendHeaderLine(b []byte, f HeaderField) []byte {
	b = append(b, f.Name...)
	b = append(b, ':', ' ')
	b = append(b, f.Value...)
	return append(b, '\r', '\n')
}

// validate checks what Encode needs to produce a chunk that follows the
// grammar of RFC 4975 §9 and that the Parser reads back unchanged; kinds
// are the headers' kinds.
func (c *Chunk) validate(kinds []headerKind, memo *validMemo) error {
	bad := func(what string) error {
		return fmt.Errorf("%w: %s", ErrInvalidChunk, what)
	}
	if !validIdent(c.TransactionID) {
		return bad("transaction id must be 4-32 characters of [A-Za-z0-9.+%=-], starting alphanumeric")
	}
	if c.IsRequest() {
		if !validMethod(c.Method) || c.Code != 0 {
			return bad("method must be upper-case letters, with no status code")
		}
	} else if c.Code < 0 || c.Code > 999 || !validText(c.Comment) || !utf8.ValidString(c.Comment) {
		return bad("status code must have 3 digits and the comment no control characters")
	}
	switch c.ContFlag {
	case 0, FlagEnd, FlagContinued, FlagAborted:
	default:
		return bad("continuation flag must be $, + or #")
	}
	var seen uint32 // the kinds met so far, by bit
	for i, f := range c.Headers {
		if !validHeaderName(f.Name) || !validText(f.Value) || !utf8.ValidString(f.Value) || (f.Value != "" && (f.Value[0] == ' ' || f.Value[0] == '\t')) {
			return bad("header " + strconv.Quote(f.Name) + " cannot be written")
		}
		k := kinds[i]
		if k <= kindMIME {
			continue
		}
		if seen&(1<<k) != 0 {
			return bad("header " + f.Name + " appears twice")
		}
		seen |= 1 << k
		if !k.valid(f.Value, memo) {
			return bad("header " + f.Name + " does not follow its grammar: " + strconv.Quote(f.Value))
		}
	}
	has := func(k headerKind) bool { return seen&(1<<k) != 0 }
	switch {
	case !has(kindToPath) || !has(kindFromPath):
		return bad("To-Path and From-Path are required")
	case !c.IsRequest() && (len(c.Data) > 0 || has(kindContentType)):
		return bad("a response has no body")
	case len(c.Data) > 0 && !has(kindContentType):
		return bad("a body needs a Content-Type")
	}
	if has(kindByteRange) && c.Method == MethodSEND { // a REPORT's names the bytes it reports on
		br, _ := c.ByteRange()
		if reason := rangeDisagrees(br, int64(len(c.Data)), c.ContFlag); reason != "" {
			return bad("Byte-Range " + br.String() + ": " + reason)
		}
	}
	if len(c.Data) > 0 && containsEndLine(c.Data, c.TransactionID) {
		return ErrBodyContainsEndLine
	}
	return nil
}

// validHeaderName: hname = ALPHA *token (RFC 4975 §9).
func validHeaderName(name string) bool {
	return name != "" && ((name[0]|0x20) >= 'a' && (name[0]|0x20) <= 'z') && isToken(name)
}

// validPathValue: MSRP-URI *( SP MSRP-URI ), checked without allocating.
func validPathValue(v string) bool {
	for {
		u, rest, more := strings.Cut(v, " ")
		if _, reason := parseURI(u, false); reason != "" {
			return false
		}
		if !more {
			return true
		}
		v = rest
	}
}

// validStatusValue: namespace SP status-code [SP comment].
func validStatusValue(v string) bool {
	return len(v) >= 7 && isDigits(v[:3]) && v[3] == ' ' && isDigits(v[4:7]) &&
		(len(v) == 7 || (v[7] == ' ' && validText(v[8:])))
}

// containsEndLine reports whether data holds "-------" + tid followed by a
// flag anywhere; a stricter test than the parser's, so that no peer that
// scans for end-lines less carefully than RFC 4975 asks is misled either.
func containsEndLine(data []byte, tid string) bool {
	var buf [7 + 32]byte
	needle := append(append(buf[:0], "-------"...), tid...)
	for {
		i := bytes.Index(data, needle)
		if i < 0 {
			return false
		}
		data = data[i+len(needle):]
		if len(data) > 0 && isFlag(data[0]) {
			return true
		}
	}
}

func isFlag(c byte) bool { return c == FlagEnd || c == FlagContinued || c == FlagAborted }

// byteString lets the grammar checks run on parser buffers without
// converting them to strings.
type byteString interface{ ~string | ~[]byte }

// validIdent: ident = ALPHANUM 3*31ident-char (RFC 4975 §9).
func validIdent[S byteString](s S) bool {
	if len(s) < 4 || len(s) > 32 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentChar(s[i]) {
			return false
		}
	}
	return true
}

func isIdentChar(c byte) bool { return charClass[c]&classIdent != 0 }

// validMethod: method = 1*UPALPHA (RFC 4975 §9), plus "_" because sipsimple
// sends FILE_OFFSET.
func validMethod[S byteString](s S) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && c != '_' {
			return false
		}
	}
	return true
}

// maxComment bounds a status comment in bytes.
const maxComment = 1024

// cleanComment makes free text fit for a status comment: a line break or
// other control character becomes a space, bytes that are not UTF-8 become
// U+FFFD. Comments often carry an error's text, which may hold either (a
// file name, errors.Join), and an answer owed to the peer must not be
// refused for it.
func cleanComment(s string) string {
	if len(s) > maxComment {
		// Long error texts are cut, at a character's start, well within
		// any peer's line limit.
		cut := maxComment
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	if validText(s) && utf8.ValidString(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// validText: utf8text = *(HTAB / %x20-7E / UTF8-NONASCII); control
// characters, CR and LF in particular, cannot appear in a header or comment.
func validText[S byteString](s S) bool {
	for i := 0; i < len(s); i++ {
		if charClass[s[i]]&classText == 0 {
			return false
		}
	}
	return true
}

// ---- Typed accessors -------------------------------------------------------

// ToPath decodes the To-Path header.
func (c *Chunk) ToPath() ([]URI, error) { return c.pathHeader(HeaderToPath) }

// FromPath decodes the From-Path header.
func (c *Chunk) FromPath() ([]URI, error) { return c.pathHeader(HeaderFromPath) }

// UsePath decodes the Use-Path header of a relay's AUTH response (RFC 4976).
func (c *Chunk) UsePath() ([]URI, error) { return c.pathHeader(HeaderUsePath) }

func (c *Chunk) pathHeader(name string) ([]URI, error) {
	v, ok := c.Headers.Lookup(name)
	if !ok {
		return nil, missingHeader(name)
	}
	path, err := ParsePath(v)
	if err != nil {
		return nil, invalidHeader(name, v, err.Error())
	}
	return path, nil
}

// MessageID returns the Message-ID header, checked against the ident grammar.
func (c *Chunk) MessageID() (string, error) {
	v, ok := c.Headers.Lookup(HeaderMessageID)
	if !ok {
		return "", missingHeader(HeaderMessageID)
	}
	if !validIdent(v) {
		return "", invalidHeader(HeaderMessageID, v, "not 4-32 ident characters")
	}
	return v, nil
}

// Unknown marks the end or total of a ByteRange written as "*".
const Unknown int64 = -1

// ByteRange is the value of a Byte-Range header (RFC 4975 §7.1.1):
// 1-based inclusive positions of the chunk's body in the message.
type ByteRange struct {
	Start int64 // first byte, 1-based
	End   int64 // last byte, or Unknown ("*", an interruptible chunk)
	Total int64 // message size, or Unknown ("*")
}

// String formats the range as "start-end/total".
func (r ByteRange) String() string {
	b := make([]byte, 0, 32)
	b = strconv.AppendInt(b, r.Start, 10)
	b = append(b, '-')
	b = appendIntOrStar(b, r.End)
	b = append(b, '/')
	return string(appendIntOrStar(b, r.Total))
}

func appendIntOrStar(b []byte, n int64) []byte {
	if n < 0 {
		return append(b, '*')
	}
	return strconv.AppendInt(b, n, 10)
}

// ByteRange decodes the Byte-Range header. It checks the grammar and that
// the numbers agree: start ≥ 1, end ≥ start-1 (an empty chunk is "1-0/0"),
// end ≤ total when both are known.
func (c *Chunk) ByteRange() (ByteRange, error) {
	v, ok := c.Headers.Lookup(HeaderByteRange)
	if !ok {
		return ByteRange{}, missingHeader(HeaderByteRange)
	}
	return ParseByteRange(v)
}

// ParseByteRange reads a Byte-Range value, "start-end/total" with "*" for
// an unknown end or total, as String prints it. A malformed value gives a
// *HeaderError matching ErrHeaderInvalid.
func ParseByteRange(v string) (ByteRange, error) {
	r, reason := parseByteRange(v)
	if reason != "" {
		return ByteRange{}, invalidHeader(HeaderByteRange, v, reason)
	}
	return r, nil
}

func parseByteRange(v string) (ByteRange, string) {
	startS, rest, ok1 := strings.Cut(v, "-")
	endS, totalS, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 {
		return ByteRange{}, `want "start-end/total"`
	}
	var r ByteRange
	var ok bool
	if r.Start, ok = parseDigits(startS); !ok || r.Start < 1 {
		return ByteRange{}, "start must be a number of 1 or more"
	}
	if r.End, ok = parseDigitsOrStar(endS); !ok {
		return ByteRange{}, "end must be a number or *"
	}
	if r.Total, ok = parseDigitsOrStar(totalS); !ok {
		return ByteRange{}, "total must be a number or *"
	}
	if r.End != Unknown && r.End < r.Start-1 {
		return ByteRange{}, "end before start"
	}
	if r.End != Unknown && r.Total != Unknown && r.End > r.Total {
		return ByteRange{}, "end beyond total"
	}
	return r, ""
}

// parseDigits reads 1*DIGIT up to 2^62, rejecting signs and spaces that
// strconv would accept.
func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

func parseDigitsOrStar(s string) (int64, bool) {
	if s == "*" {
		return Unknown, true
	}
	return parseDigits(s)
}

// Status is the value of a REPORT's Status header (RFC 4975 §7.1.2):
// "000 <code> [comment]".
type Status struct {
	Code    int
	Comment string
}

// String formats the status for the wire, namespace 000 included.
func (s Status) String() string {
	if s.Comment == "" {
		return "000 " + pad3(s.Code)
	}
	return "000 " + pad3(s.Code) + " " + s.Comment
}

// Status decodes the Status header.
func (c *Chunk) Status() (Status, error) {
	v, ok := c.Headers.Lookup(HeaderStatus)
	if !ok {
		return Status{}, missingHeader(HeaderStatus)
	}
	return ParseStatus(v)
}

// ParseStatus reads a Status value, "000 code [comment]", as String prints
// it. A malformed value gives a *HeaderError matching ErrHeaderInvalid.
func ParseStatus(v string) (Status, error) {
	if len(v) < 7 || v[:4] != "000 " || !isDigits(v[4:7]) || (len(v) > 7 && v[7] != ' ') {
		return Status{}, invalidHeader(HeaderStatus, v, `want "000 <3 digits> [comment]"`)
	}
	s := Status{Code: int(v[4]-'0')*100 + int(v[5]-'0')*10 + int(v[6]-'0')}
	if len(v) > 8 {
		s.Comment = v[8:]
	}
	return s, nil
}

func isDigits[S byteString](s S) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

// SuccessReport decodes Success-Report: true for "yes", false for "no" or
// when the header is absent (its RFC 4975 default). Values are matched
// case-insensitively, as ABNF literals are.
func (c *Chunk) SuccessReport() (bool, error) {
	v, ok := c.Headers.Lookup(HeaderSuccessReport)
	switch {
	case !ok || strings.EqualFold(v, "no"):
		return false, nil
	case strings.EqualFold(v, "yes"):
		return true, nil
	}
	return false, invalidHeader(HeaderSuccessReport, v, `want "yes" or "no"`)
}

// FailureReport is the value of a Failure-Report header. The zero value is
// the RFC 4975 default, FailureReportYes.
type FailureReport uint8

const (
	FailureReportYes     FailureReport = iota // responses and failure REPORTs
	FailureReportNo                           // no response at all
	FailureReportPartial                      // negative responses and REPORTs only
)

// String returns the header value: "yes", "no" or "partial"
// ("FailureReport(n)" for a value that is none of them).
func (f FailureReport) String() string {
	switch f {
	case FailureReportYes:
		return "yes"
	case FailureReportNo:
		return "no"
	case FailureReportPartial:
		return "partial"
	}
	return fmt.Sprintf("FailureReport(%d)", uint8(f))
}

// ParseFailureReport reads a Failure-Report value as String prints it,
// ignoring case. Any other value gives a *HeaderError matching
// ErrHeaderInvalid.
func ParseFailureReport(v string) (FailureReport, error) {
	switch {
	case strings.EqualFold(v, "yes"):
		return FailureReportYes, nil
	case strings.EqualFold(v, "no"):
		return FailureReportNo, nil
	case strings.EqualFold(v, "partial"):
		return FailureReportPartial, nil
	}
	return FailureReportYes, invalidHeader(HeaderFailureReport, v, `want "yes", "no" or "partial"`)
}

// FailureReport decodes Failure-Report, FailureReportYes when it is absent.
func (c *Chunk) FailureReport() (FailureReport, error) {
	v, ok := c.Headers.Lookup(HeaderFailureReport)
	if !ok {
		return FailureReportYes, nil
	}
	return ParseFailureReport(v)
}

// ContentType returns the Content-Type header as written, after checking that
// it is a media type ("type/subtype" with optional parameters).
func (c *Chunk) ContentType() (string, error) { return c.contentType(nil) }

func (c *Chunk) contentType(memo *validMemo) (string, error) {
	v, ok := c.Headers.Lookup(HeaderContentType)
	if !ok {
		return "", missingHeader(HeaderContentType)
	}
	if !memo.check(memoReadableMedia, v, readableMediaType) {
		return "", invalidHeader(HeaderContentType, v, "not a media type")
	}
	return v, nil
}

// validMediaType checks a Content-Type we write against RFC 4975 §9:
// type "/" subtype *( ";" gen-param ), gen-param = pname [ "=" pval ],
// pval = token / quoted-string, with no whitespace but one space after
// each ";", which RFC 2045 headers write and every stack reads.
func validMediaType(v string) bool { return scanMediaType(v, true) }

// readableMediaType is what ContentType accepts from a peer: the same,
// with any whitespace around the separators and empty parameters (a
// trailing ";"), as mime.ParseMediaType reads them.
func readableMediaType(v string) bool { return scanMediaType(v, false) }

func scanMediaType(v string, strict bool) bool {
	i := 0
	space := func() {
		for !strict && i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
	}
	token := func() bool {
		from := i
		for i < len(v) && isMIMETokenChar(v[i]) {
			i++
		}
		return i > from
	}
	space()
	if !token() || i == len(v) || v[i] != '/' {
		return false
	}
	i++
	if !token() {
		return false
	}
	for {
		space()
		if i == len(v) {
			return true
		}
		if v[i] != ';' {
			return false
		}
		i++
		if strict && i < len(v) && v[i] == ' ' {
			i++
		}
		space()
		if !strict && (i == len(v) || v[i] == ';') {
			continue // an empty parameter, as in "text/plain;", which many write
		}
		if !token() {
			return false
		}
		space()
		if i == len(v) || v[i] != '=' {
			continue
		}
		i++
		space()
		if i < len(v) && v[i] == '"' {
			if i = quotedStringEnd(v, i); i < 0 {
				return false
			}
		} else if !token() {
			return false
		}
	}
}

// quotedStringEnd returns the index after the quoted-string that starts at
// v[i], or -1: qdtext is SP, HTAB and printable characters but DQUOTE and
// backslash, and UTF-8; qd-esc is a backslash before one of those two.
func quotedStringEnd(v string, i int) int {
	for i++; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			if i+1 == len(v) || (v[i+1] != '"' && v[i+1] != '\\') {
				return -1
			}
			i++
		case c < 0x20 && c != '\t', c == 0x7f:
			return -1
		}
	}
	return -1
}

// isMIMETokenChar: a character of an RFC 4975 token (the same as RFC
// 2045's): printable ASCII but space and tspecials.
func isMIMETokenChar(c byte) bool {
	return c > ' ' && c < 0x7f && strings.IndexByte(`()<>@,;:\"/[]?=`, c) < 0
}

// Expires decodes the Expires header (seconds, RFC 4976 §5).
func (c *Chunk) Expires() (int, error) { return c.secondsHeader(HeaderExpires) }

// MinExpires decodes the Min-Expires header of a 423 response.
func (c *Chunk) MinExpires() (int, error) { return c.secondsHeader(HeaderMinExpires) }

// MaxExpires decodes the Max-Expires header of a 423 response.
func (c *Chunk) MaxExpires() (int, error) { return c.secondsHeader(HeaderMaxExpires) }

func (c *Chunk) secondsHeader(name string) (int, error) {
	v, ok := c.Headers.Lookup(name)
	if !ok {
		return 0, missingHeader(name)
	}
	n, ok := parseDigits(v)
	if !ok || n > 1<<31-1 {
		return 0, invalidHeader(name, v, "not a number of seconds")
	}
	return int(n), nil
}

// AuthParams are the parameters of a digest header, in order, with quotes
// removed from quoted values.
type AuthParams []Param

// Get returns the value of the named parameter (case-insensitive) and
// whether it is present.
func (p AuthParams) Get(name string) (string, bool) {
	for _, x := range p {
		if strings.EqualFold(x.Name, name) {
			return x.Value, true
		}
	}
	return "", false
}

// WWWAuthenticate decodes a relay's digest challenge (RFC 4976 §5,
// RFC 2617): "Digest" followed by comma-separated parameters.
func (c *Chunk) WWWAuthenticate() (AuthParams, error) {
	return c.digestHeader(HeaderWWWAuthenticate, true)
}

// Authorization decodes a client's digest credentials.
func (c *Chunk) Authorization() (AuthParams, error) {
	return c.digestHeader(HeaderAuthorization, true)
}

// AuthenticationInfo decodes a relay's Authentication-Info (no scheme
// prefix): nextnonce, qop, rspauth, cnonce, nc.
func (c *Chunk) AuthenticationInfo() (AuthParams, error) {
	return c.digestHeader(HeaderAuthenticationInfo, false)
}

func (c *Chunk) digestHeader(name string, withScheme bool) (AuthParams, error) {
	v, ok := c.Headers.Lookup(name)
	if !ok {
		return nil, missingHeader(name)
	}
	s := v
	if withScheme {
		scheme, rest, _ := strings.Cut(s, " ")
		if !strings.EqualFold(scheme, "Digest") {
			return nil, invalidHeader(name, v, `scheme is not "Digest"`)
		}
		s = rest
	}
	params, reason := parseAuthParams(s)
	if reason != "" {
		return nil, invalidHeader(name, v, reason)
	}
	return params, nil
}

// parseAuthParams reads `name=token` and `name="quoted string"` pairs
// separated by commas and optional whitespace (RFC 2617 §1.2).
func parseAuthParams(s string) (AuthParams, string) {
	var params AuthParams
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, "parameter without name=value"
		}
		name := strings.TrimRight(s[:eq], " \t")
		if !isToken(name) {
			return nil, "invalid parameter name " + strconv.Quote(name)
		}
		s = strings.TrimLeft(s[eq+1:], " \t")
		var value string
		if strings.HasPrefix(s, `"`) {
			var ok bool
			value, s, ok = cutQuoted(s)
			if !ok {
				return nil, "unterminated quoted string"
			}
		} else {
			end := strings.IndexAny(s, ", \t")
			if end < 0 {
				end = len(s)
			}
			value, s = s[:end], s[end:]
			if !isToken(value) {
				return nil, "invalid value for " + name
			}
		}
		params = append(params, Param{Name: name, Value: value})
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		if s[0] != ',' {
			return nil, "parameters must be separated by commas"
		}
		s = s[1:]
	}
	if len(params) == 0 {
		return nil, "no parameters"
	}
	return params, ""
}

// cutQuoted reads a quoted-string at the start of s, undoing backslash
// escapes, and returns it with the remainder of s.
func cutQuoted(s string) (value, rest string, ok bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '"':
			return b.String(), s[i+1:], true
		case '\\':
			i++
			if i == len(s) {
				return "", "", false
			}
		}
		b.WriteByte(s[i])
	}
	return "", "", false
}
