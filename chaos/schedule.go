package chaos

import (
	"errors"
	"fmt"
	"time"
)

// Schedule says when a fault is in place, as offsets from the start of the
// load: occurrence k (0-based) starts at At + k×Every and lasts For.
type Schedule struct {
	// At is when the first occurrence starts.
	At time.Duration
	// For is how long each occurrence lasts; 0 keeps the fault until the
	// runner stops (the end of the load).
	For time.Duration
	// Every repeats the fault with this period; 0 means once.
	Every time.Duration
	// Times bounds the occurrences; 0 means one without Every, and as many
	// as fit before the runner stops with it.
	Times int
	// Steps ramps the fault's strength in this many equal steps over each
	// occurrence (see Rampable); 0 or 1 means no ramp.
	Steps int
}

// Validate reports a schedule that cannot be played.
func (s Schedule) Validate() error {
	switch {
	case s.At < 0 || s.For < 0 || s.Every < 0 || s.Times < 0 || s.Steps < 0:
		return errors.New("at, for, every, times and steps must not be negative")
	case s.Every > 0 && s.For == 0:
		return errors.New("a repeated fault needs for: (each occurrence must end before the next)")
	case s.Every > 0 && s.For >= s.Every:
		return fmt.Errorf("for %s must be shorter than every %s, so each occurrence ends before the next", s.For, s.Every)
	case s.Times > 1 && s.Every == 0:
		return errors.New("times > 1 needs every: (the period of the repetitions)")
	case s.Steps > 1 && s.For == 0:
		return errors.New("a ramp needs for: (the steps share the occurrence's time)")
	}
	return nil
}

// Occurrence returns when occurrence k starts, and false when there is none.
func (s Schedule) Occurrence(k int) (time.Duration, bool) {
	if k < 0 {
		return 0, false
	}
	if s.Every == 0 {
		return s.At, k == 0
	}
	if s.Times > 0 && k >= s.Times {
		return 0, false
	}
	return s.At + time.Duration(k)*s.Every, true
}

// StepAt returns when step i of an occurrence starting at start begins.
func (s Schedule) StepAt(start time.Duration, i int) time.Duration {
	n := max(s.Steps, 1)
	return start + time.Duration(int64(s.For)*int64(i)/int64(n))
}

// End returns when an occurrence starting at start ends, and false when it
// lasts until the runner stops.
func (s Schedule) End(start time.Duration) (time.Duration, bool) {
	if s.For == 0 {
		return 0, false
	}
	return start + s.For, true
}

// String is e.g. "at 2s for 3s every 5s ×2".
func (s Schedule) String() string {
	out := "at " + s.At.String()
	if s.For > 0 {
		out += " for " + s.For.String()
	}
	if s.Every > 0 {
		out += " every " + s.Every.String()
		if s.Times > 0 {
			out += fmt.Sprintf(" ×%d", s.Times)
		}
	}
	if s.Steps > 1 {
		out += fmt.Sprintf(" in %d steps", s.Steps)
	}
	return out
}
