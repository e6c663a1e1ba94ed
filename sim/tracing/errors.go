package tracing

import "fmt"

// A ParseError is a malformed trace header.
type ParseError struct{ msg string }

func (e *ParseError) Error() string { return e.msg }

// errorf makes a ParseError; it allocates only on the error path.
func errorf(format string, args ...any) error {
	return &ParseError{msg: fmt.Sprintf(format, args...)}
}
