// Package units holds the small value types that scenario files spell as
// text: durations such as "250ms" and rates such as "500/s".
package units

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration that reads and writes as Go duration text ("250ms").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML accepts Go duration text; a bare number is refused so that a
// forgotten unit ("timeout: 5") never silently means 5 ns.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("want a duration like 250ms: %w", err)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDuration parses Go duration text and refuses negative values.
func ParseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want a number with a unit, like 250ms or 2s", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	return Duration(v), nil
}

// MarshalYAML writes the duration as text, which UnmarshalYAML reads back.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads duration text.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Rate is a request rate in requests per second, written "500/s", "30000/m" or "500".
type Rate struct {
	Freq int           // requests per Per
	Per  time.Duration // period
}

// PerSecond returns the rate as requests per second.
func (r Rate) PerSecond() float64 {
	if r.Per == 0 {
		return 0
	}
	return float64(r.Freq) / r.Per.Seconds()
}

// String formats the rate as "N/s" where the period is a second.
func (r Rate) String() string {
	if r.Per == time.Second {
		return fmt.Sprintf("%d/s", r.Freq)
	}
	return fmt.Sprintf("%d/%s", r.Freq, r.Per)
}

// ParseRate reads "500/s", "500/1s", "30000/m" or a bare "500" (per second).
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	num, per, found := strings.Cut(s, "/")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || n <= 0 {
		return Rate{}, fmt.Errorf("invalid rate %q: want a positive whole number of requests, like 500/s", s)
	}
	r := Rate{Freq: n, Per: time.Second}
	if found {
		switch p := strings.TrimSpace(per); p {
		case "s":
		case "m":
			r.Per = time.Minute
		case "h":
			r.Per = time.Hour
		default:
			d, err := time.ParseDuration(p)
			if err != nil || d <= 0 {
				return Rate{}, fmt.Errorf("invalid rate %q: the period after / must be s, m, h or a duration", s)
			}
			r.Per = d
		}
	}
	return r, nil
}

// UnmarshalYAML reads rate text or a bare integer.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseRate(n.Value)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MarshalJSON writes the rate as text.
func (r Rate) MarshalJSON() ([]byte, error) { return json.Marshal(r.String()) }
