package cpim

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns wraps one of them (use
// errors.Is) and adds detail such as the line or header concerned.
var (
	// ErrMalformed reports input that does not follow the syntax: a header
	// line that is not "Name: value", a control character in a header, XML
	// that is not well-formed, a missing blank line.
	ErrMalformed = errors.New("cpim: malformed")

	// ErrMissingHeader reports a header the rules require but that is
	// absent: From, To or Content-Type in a CPIM message (RFC 4975 §13,
	// RFC 3862 §2.4), or an IMDN header needed to answer a message.
	ErrMissingHeader = errors.New("cpim: missing header")

	// ErrDuplicateHeader reports a header that may appear only once but
	// appears again (From, DateTime, Require: RFC 4975 §13), a Subject
	// repeated with the same language, or an NS prefix bound twice.
	ErrDuplicateHeader = errors.New("cpim: duplicate header")

	// ErrBadDateTime reports a DateTime header or an XML date that is not
	// an RFC 3339 date-time (RFC 3862 §4.4).
	ErrBadDateTime = errors.New("cpim: bad date-time")

	// ErrBadAddress reports a From, To, cc or NS value that is not
	// [Formal-name] "<" URI ">" (RFC 3862 §4.1-§4.3, §4.6).
	ErrBadAddress = errors.New("cpim: bad address")

	// ErrUndeclaredPrefix reports a header name whose namespace prefix no
	// earlier NS header declared (RFC 3862 §3.4).
	ErrUndeclaredPrefix = errors.New("cpim: undeclared namespace prefix")

	// ErrHeaderTooLarge reports a header block longer than
	// Parser.MaxHeaderBytes; the parser stops scanning at the limit.
	ErrHeaderTooLarge = errors.New("cpim: header block too large")

	// ErrTooManyHeaders reports more header lines than Parser.MaxHeaders.
	ErrTooManyHeaders = errors.New("cpim: too many headers")

	// ErrXMLTooLarge reports an XML document longer than
	// Parser.MaxXMLBytes; nothing of it is decoded.
	ErrXMLTooLarge = errors.New("cpim: XML document too large")

	// ErrXMLTooDeep reports XML elements nested deeper than
	// Parser.MaxXMLDepth.
	ErrXMLTooDeep = errors.New("cpim: XML nested too deeply")

	// ErrXMLDeclaration reports a DOCTYPE, ENTITY or other <!...>
	// declaration in an XML document. None of the formats here uses one,
	// and they are the vehicle of entity-expansion attacks.
	ErrXMLDeclaration = errors.New("cpim: XML declaration refused")

	// ErrInvalidDocument reports well-formed XML that is not a valid
	// document of the expected type: wrong root element, a mandatory
	// element missing or repeated, a value of the wrong form.
	ErrInvalidDocument = errors.New("cpim: invalid document")

	// ErrNotNotification reports a CPIM message that is not an IMDN
	// (RFC 5438 §9: Content-Type message/imdn+xml and
	// Content-Disposition notification).
	ErrNotNotification = errors.New("cpim: not an IMDN")

	// ErrNotRequested reports an attempt to answer a message with an IMDN
	// it did not request, or with an IMDN for an IMDN (RFC 5438 §7.2.1).
	ErrNotRequested = errors.New("cpim: notification not requested")
)

// errorf wraps sentinel with a formatted detail.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}

// lineErr wraps sentinel with the 1-based header line number and detail.
func lineErr(sentinel error, line int, format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", sentinel, line, fmt.Sprintf(format, args...))
}
