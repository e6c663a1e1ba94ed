package spec

import "time"

// PeakRate is the highest request rate the scenario drives at any moment,
// per second: its load's rate or its plan's highest step, or its
// steady-state phases' rate where that is higher. A suite running
// scenarios side by side adds these up to stay within what the machine
// holds.
func (sc *Scenario) PeakRate() float64 {
	peak := sc.Load.Rate.PerSecond()
	if sc.Load.Plan != nil {
		peak = max(peak, sc.Load.Plan.Peak())
	}
	if ss := sc.SteadyState; ss != nil {
		peak = max(peak, ss.Rate.PerSecond())
	}
	return peak
}

// LoadLength is how long the scenario sends load once its mesh is up: the
// main phase (a plan's length, filled in as the load's duration) and the
// two steady-state phases around it. The unmeasured warm-up is the same
// for every scenario and left out.
func (sc *Scenario) LoadLength() time.Duration {
	d := sc.Load.Duration.D()
	if sc.Load.Plan != nil {
		d = max(d, sc.Load.Plan.Length())
	}
	if ss := sc.SteadyState; ss != nil {
		d += 2 * ss.Duration.D()
	}
	return d
}
