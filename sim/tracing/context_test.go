package tracing

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestB3RoundTrip(t *testing.T) {
	for _, c := range []Context{
		{TraceID: TraceID{Lo: 0xabc}, SpanID: 1, Sampled: SamplingYes},
		{TraceID: TraceID{Hi: 7, Lo: 0xabc, Is128: true}, SpanID: 0xfeed, ParentID: 0xbeef, Sampled: SamplingNo},
		{TraceID: TraceID{Hi: 0, Lo: 1, Is128: true}, SpanID: 2, ParentID: 3, Sampled: SamplingYes},
	} {
		h := http.Header{}
		SetB3(h, c)
		got, found, err := FromB3(h)
		require.NoError(t, err)
		assert.True(t, found)
		assert.Equal(t, c, got)

		single, err := ParseB3Single(FormatB3Single(c))
		require.NoError(t, err)
		assert.Equal(t, c, single)
	}
}

func TestB3Headers(t *testing.T) {
	h := http.Header{}
	h.Set("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124")
	h.Set("x-b3-spanid", "a2fb4a1d1a96d312")
	h.Set("x-b3-parentspanid", "0020000000000001")
	h.Set("x-b3-sampled", "1")
	c, found, err := FromB3(h)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, "463ac35c9f6413ad48485a3953bb6124", c.TraceID.String())
	assert.Equal(t, uint64(0xa2fb4a1d1a96d312), c.SpanID)
	assert.Equal(t, uint64(0x0020000000000001), c.ParentID)
	assert.Equal(t, SamplingYes, c.Sampled)

	// A bare sampling decision: found, not Valid.
	c, found, err = FromB3(http.Header{"X-B3-Sampled": {"0"}})
	require.NoError(t, err)
	assert.True(t, found)
	assert.False(t, c.Valid())
	assert.Equal(t, SamplingNo, c.Sampled)

	// x-b3-flags: 1 is debug, which samples.
	c, _, err = FromB3(http.Header{"X-B3-Flags": {"1"}})
	require.NoError(t, err)
	assert.True(t, c.Debug)
	assert.Equal(t, SamplingYes, c.Sampled)

	_, found, err = FromB3(http.Header{})
	assert.NoError(t, err)
	assert.False(t, found)

	for _, bad := range []http.Header{
		{"X-B3-Traceid": {"463ac35c9f6413ad"}},
		{"X-B3-Traceid": {"0000000000000000"}, "X-B3-Spanid": {"a2fb4a1d1a96d312"}},
		{"X-B3-Traceid": {"463ac35c9f6413ad"}, "X-B3-Spanid": {"A2FB4A1D1A96D312"}},
		{"X-B3-Traceid": {"463ac35c9f6413"}, "X-B3-Spanid": {"a2fb4a1d1a96d312"}},
		{"X-B3-Sampled": {"yes"}},
		{"B3": {"463ac35c9f6413ad-a2fb4a1d1a96d312-x"}},
	} {
		_, _, err := FromB3(bad)
		assert.Error(t, err, "%v", bad)
	}
}

func TestB3Single(t *testing.T) {
	c, err := ParseB3Single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90")
	require.NoError(t, err)
	assert.Equal(t, "80f198ee56343ba864fe8b2a57d3eff7", c.TraceID.String())
	assert.Equal(t, uint64(0x05e3ac9a4f6e3b90), c.ParentID)
	assert.Equal(t, SamplingYes, c.Sampled)
	c, err = ParseB3Single("d")
	require.NoError(t, err)
	assert.True(t, c.Debug)
	h := http.Header{"B3": {"80f198ee56343ba8-e457b5a2e4d86bd1-0"}}
	c, found, err := FromB3(h)
	require.NoError(t, err)
	assert.True(t, found && c.Valid())
	assert.Equal(t, SamplingNo, c.Sampled)
}

func TestTraceparent(t *testing.T) {
	// The spec's example (W3C Trace Context §3.2.2.5 / Examples).
	const v = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	c, err := ParseTraceparent(v)
	require.NoError(t, err)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", c.TraceID.String())
	assert.Equal(t, uint64(0x00f067aa0ba902b7), c.SpanID)
	assert.Equal(t, SamplingYes, c.Sampled)
	assert.Equal(t, v, FormatTraceparent(c))

	// A 64-bit trace id goes out left-padded and comes back 128-bit.
	c64 := Context{TraceID: TraceID{Lo: 0xabcdef}, SpanID: 9, Sampled: SamplingNo}
	back, err := ParseTraceparent(FormatTraceparent(c64))
	require.NoError(t, err)
	assert.Equal(t, c64.TraceID.Lo, back.TraceID.Lo)
	assert.Equal(t, SamplingNo, back.Sampled)

	// A later version may carry more fields.
	_, err = ParseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")
	assert.NoError(t, err)

	for _, bad := range []string{
		"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
	} {
		_, err := ParseTraceparent(bad)
		assert.Error(t, err, bad)
	}
}

func TestParseNoAllocs(t *testing.T) {
	h := http.Header{}
	SetB3(h, Context{TraceID: TraceID{Hi: 1, Lo: 2, Is128: true}, SpanID: 3, ParentID: 4, Sampled: SamplingYes})
	h.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	allocs := testing.AllocsPerRun(100, func() {
		_, _, _ = FromB3(h)
		_, _, _ = FromTraceparent(h)
	})
	assert.Zero(t, allocs)
}

func TestSetB3Allocs(t *testing.T) {
	h := make(http.Header, 8)
	c := Context{TraceID: TraceID{Hi: 1, Lo: 2, Is128: true}, SpanID: 3, ParentID: 4, Sampled: SamplingNo}
	assert.Equal(t, 2.0, testing.AllocsPerRun(100, func() { SetB3(h, c) }))
	assert.Equal(t, "00000000000000010000000000000002", h.Get("x-b3-traceid"))
	assert.Equal(t, "0000000000000003", h.Get("x-b3-spanid"))
	assert.Equal(t, "0000000000000004", h.Get("x-b3-parentspanid"))
	assert.Equal(t, "0", h.Get("x-b3-sampled"))
}

func FuzzFromB3(f *testing.F) {
	f.Add("463ac35c9f6413ad48485a3953bb6124", "a2fb4a1d1a96d312", "0020000000000001", "1", "")
	f.Add("463ac35c9f6413ad", "a2fb4a1d1a96d312", "", "0", "80f198ee56343ba8-e457b5a2e4d86bd1-d-05e3ac9a4f6e3b90")
	f.Fuzz(func(t *testing.T, tid, sid, pid, sampled, single string) {
		h := http.Header{}
		for k, v := range map[string]string{"x-b3-traceid": tid, "x-b3-spanid": sid, "x-b3-parentspanid": pid, "x-b3-sampled": sampled, "b3": single} {
			if v != "" {
				h.Set(k, v)
			}
		}
		c, _, err := FromB3(h)
		if err != nil || !c.Valid() {
			return
		}
		// What parses formats back to the same context.
		h2 := http.Header{}
		SetB3(h2, c)
		c2, _, err := FromB3(h2)
		if err != nil {
			t.Fatalf("re-parse of %+v: %v", c, err)
		}
		if c.Sampled == SamplingUnset {
			c.Sampled = SamplingNo // SetB3 always sends a decision
		}
		c.Debug = false
		if c2 != c {
			t.Fatalf("round trip: %+v != %+v", c2, c)
		}
	})
}

func FuzzParseB3Single(f *testing.F) {
	f.Add("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90")
	f.Add("0")
	f.Fuzz(func(t *testing.T, v string) {
		c, err := ParseB3Single(v)
		if err != nil || !c.Valid() {
			return
		}
		c2, err := ParseB3Single(FormatB3Single(c))
		if err != nil || c2 != c {
			t.Fatalf("round trip of %q: %+v, %v", v, c2, err)
		}
	})
}

func FuzzParseTraceparent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x")
	f.Fuzz(func(t *testing.T, v string) {
		c, err := ParseTraceparent(v)
		if err != nil {
			return
		}
		c2, err := ParseTraceparent(FormatTraceparent(c))
		if err != nil || c2 != c {
			t.Fatalf("round trip of %q: %+v, %v", v, c2, err)
		}
	})
}
