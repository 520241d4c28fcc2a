package cpim

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
)

// decodeXML checks b with checkXML and then unmarshals it into v.
func (p Parser) decodeXML(b []byte, v any) error {
	b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF")) // a UTF-8 byte order mark, which XML 1.0 allows
	if err := p.checkXML(b); err != nil {
		return err
	}
	if err := xml.Unmarshal(b, v); err != nil {
		return errorf(ErrInvalidDocument, "%v", err)
	}
	return nil
}

// checkXML refuses, before anything is decoded into a structure, an XML
// document that is too large, that holds a DOCTYPE, ENTITY or other
// declaration, that nests elements too deeply, or that is not well-formed
// (including a second root element or text outside the root).
//
// encoding/xml never expands entities beyond the predefined five, so an
// entity-expansion document ("billion laughs") could not grow in memory
// anyway; refusing the declaration gives a clear error at the first token.
// A document declaring an encoding other than UTF-8 is refused too (RFC
// 3994 §6, RFC 5438 §11.1 require UTF-8).
func (p Parser) checkXML(b []byte) error {
	maxBytes := orDefault(p.MaxXMLBytes, DefaultMaxXMLBytes)
	if len(b) > maxBytes {
		return errorf(ErrXMLTooLarge, "%d bytes, limit %d", len(b), maxBytes)
	}
	maxDepth := orDefault(p.MaxXMLDepth, DefaultMaxXMLDepth)
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	depth, roots := 0, 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return errorf(ErrMalformed, "XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			kind, _, _ := strings.Cut(strings.TrimSpace(string(t)), " ")
			return errorf(ErrXMLDeclaration, "<!%.20s ...>", kind)
		case xml.StartElement:
			if depth == 0 {
				if roots++; roots > 1 {
					return errorf(ErrMalformed, "XML: more than one root element")
				}
			}
			if depth++; depth > maxDepth {
				return errorf(ErrXMLTooDeep, "more than %d levels", maxDepth)
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return errorf(ErrMalformed, "XML: text outside the root element")
			}
		}
	}
	if roots == 0 {
		return errorf(ErrMalformed, "XML: no root element")
	}
	return nil
}

// marshalXML encodes v after the XML declaration.
func marshalXML(v any) ([]byte, error) {
	out, err := xml.Marshal(v)
	if err != nil {
		return nil, errorf(ErrInvalidDocument, "%v", err)
	}
	return append([]byte(xml.Header), out...), nil
}

// single returns the only element of vals, trimmed of XML white space, or
// an error naming elem if there are several (or none when required).
func single(vals []string, elem string, required bool) (string, bool, error) {
	switch {
	case len(vals) > 1:
		return "", false, errorf(ErrInvalidDocument, "<%s> appears %d times", elem, len(vals))
	case len(vals) == 0 && required:
		return "", false, errorf(ErrInvalidDocument, "no <%s>", elem)
	case len(vals) == 0:
		return "", false, nil
	}
	return strings.TrimSpace(vals[0]), true, nil
}

// parseXSDateTime parses an xs:dateTime or RFC 3339 date-time. A time
// without a zone, which xs:dateTime allows, is taken as UTC.
func parseXSDateTime(s string) (time.Time, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse("2006-01-02T15:04:05.999999999", s)
	if err != nil {
		return time.Time{}, errorf(ErrBadDateTime, "%q", s)
	}
	return t, nil
}

// formatDateTime formats t in RFC 3339, refusing years RFC 3339 cannot
// express.
func formatDateTime(t time.Time, what string) (string, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return "", errorf(ErrBadDateTime, "%s: year %d out of RFC 3339 range", what, y)
	}
	return rfc3339(t), nil
}

// xmlText reports whether s holds only characters XML 1.0 allows.
func xmlText(s string) bool {
	for _, r := range s {
		if !(r == 0x9 || r == 0xA || r == 0xD || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF) {
			return false
		}
	}
	return true
}

// rfc3339 formats t in RFC 3339, in UTC when its zone's offset has
// seconds, which RFC 3339 cannot write: the instant is kept.
func rfc3339(t time.Time) string {
	if _, offset := t.Zone(); offset%60 != 0 {
		t = t.UTC()
	}
	return t.Format(time.RFC3339Nano)
}

// parsePositive parses an xs:positiveInteger that fits a time.Duration in
// seconds.
func parsePositive(s, elem string) (time.Duration, error) {
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "+"), 10, 63)
	const maxSeconds = 1<<63/uint64(time.Second) - 1
	if err != nil || n == 0 || n > maxSeconds {
		return 0, errorf(ErrInvalidDocument, "<%s> %q is not a positive integer of seconds", elem, s)
	}
	return time.Duration(n) * time.Second, nil
}
