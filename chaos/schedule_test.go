package chaos

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestScheduleOccurrences(t *testing.T) {
	s := Schedule{At: 2 * time.Second, For: time.Second, Every: 3 * time.Second, Times: 3}
	require.NoError(t, s.Validate())
	var starts []time.Duration
	for k := 0; ; k++ {
		at, ok := s.Occurrence(k)
		if !ok {
			break
		}
		starts = append(starts, at)
	}
	require.Equal(t, []time.Duration{2 * time.Second, 5 * time.Second, 8 * time.Second}, starts)
	end, ok := s.End(5 * time.Second)
	require.True(t, ok)
	require.Equal(t, 6*time.Second, end)

	once := Schedule{At: time.Second}
	_, ok = once.Occurrence(1)
	require.False(t, ok)
	_, ok = once.End(time.Second)
	require.False(t, ok, "no for: until the runner stops")

	forever := Schedule{For: 100 * time.Millisecond, Every: time.Second}
	at, ok := forever.Occurrence(1000)
	require.True(t, ok)
	require.Equal(t, 1000*time.Second, at)

	ramp := Schedule{At: time.Second, For: 4 * time.Second, Steps: 4}
	require.Equal(t, 3*time.Second, ramp.StepAt(time.Second, 2))
	require.Equal(t, "at 1s for 4s in 4 steps", ramp.String())
}

func TestScheduleRejectsWhatCannotBePlayed(t *testing.T) {
	for _, s := range []Schedule{
		{At: -time.Second},
		{Every: time.Second},                   // repeated without for
		{For: time.Second, Every: time.Second}, // overlapping occurrences
		{Times: 2},                             // times without every
		{Steps: 3},                             // ramp without for
	} {
		require.Error(t, s.Validate(), "%+v", s)
	}
}
