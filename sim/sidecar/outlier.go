package sidecar

import (
	"time"
)

// Outlier detection as Envoy implements it for consecutive errors
// (source/extensions/outlier_detection_monitors and the outlier detection
// architecture docs): a host is ejected the moment its run of 5xx (or of
// 502/503/504) reaches the threshold, if enforcement allows and ejecting it
// keeps the ejected share within max_ejection_percent; it comes back at the
// first interval tick after base_ejection_time × the number of times it has
// been ejected (capped at max_ejection_time); each tick that finds a host in
// service lowers that multiplier by one. Local failures (connect failure,
// reset, timeout) count as a 503, since Istio leaves
// split_external_local_origin_errors off.

// observe records one attempt's outcome at a host: an HTTP status, or 503
// for a failure before any response.
func (u *upstream) observe(h *host, code int) {
	oc := u.conf.Load().outlier
	if oc == nil {
		return
	}
	h.mu.Lock()
	var kinds []string
	if code >= 500 {
		// As Envoy's DetectorHostMonitorImpl::putHttpResponseCode and
		// DetectorImpl::onConsecutiveErrorWorker: a run that reaches its
		// threshold on a host in service resets its counter before the
		// ejection is tried, whether enforcement or max_ejection_percent
		// then refuses it, so a host that keeps failing is detected again
		// at every threshold'th error.
		if code == 502 || code == 503 || code == 504 {
			h.consGateway++
			if oc.consecutiveGateway > 0 && h.consGateway == oc.consecutiveGateway && !h.out.Load() {
				h.consGateway = 0
				if u.enforce(oc.enforceGateway) {
					kinds = append(kinds, "consecutive_gateway_failure")
				}
			}
		} else {
			h.consGateway = 0
		}
		h.cons5xx++
		if oc.consecutive5xx > 0 && h.cons5xx == oc.consecutive5xx && !h.out.Load() {
			h.cons5xx = 0
			if u.enforce(oc.enforce5xx) {
				kinds = append(kinds, "consecutive_5xx")
			}
		}
	} else {
		h.cons5xx, h.consGateway = 0, 0
	}
	h.mu.Unlock()
	for _, kind := range kinds {
		u.eject(h, oc, kind)
	}
}

func (u *upstream) enforce(percent uint32) bool {
	return percent >= 100 || percent > 0 && uint32(u.intn(100)) < percent
}

// eject takes a host out of service if the max ejection percent allows it.
func (u *upstream) eject(h *host, oc *outlierConf, kind string) {
	if h.out.Load() {
		return
	}
	total := len(u.hosts.Load().hosts)
	if total == 0 {
		return
	}
	active := u.ejected.Load()
	if float64(active+1)*100/float64(total) > float64(oc.maxEjectionPercent) {
		u.metrics.ejectionsOverflow.WithLabelValues(u.name).Inc()
		return
	}
	h.mu.Lock()
	if h.out.Load() {
		h.mu.Unlock()
		return
	}
	h.numEjections++
	h.ejectedAt = time.Now()
	h.out.Store(true)
	h.mu.Unlock()
	u.ejected.Add(1)
	u.metrics.ejectionsActive.WithLabelValues(u.name).Set(float64(u.ejected.Load()))
	u.metrics.ejectionsEnforced.WithLabelValues(u.name, kind).Inc()
}

// outlierLoop runs the interval timer that brings hosts back.
func (u *upstream) outlierLoop() {
	defer close(u.done)
	for {
		interval := time.Second
		c := u.conf.Load()
		if oc := c.outlier; oc != nil {
			interval = oc.interval
		}
		if c.originalDst && c.cleanup > 0 {
			interval = c.cleanup // the ORIGINAL_DST cleanup timer; such clusters have no outlier detection
		}
		t := time.NewTimer(interval)
		select {
		case <-u.stop:
			t.Stop()
			return
		case now := <-t.C:
			if c.originalDst {
				u.cleanupOriginalDst()
				continue
			}
			u.tick(now)
		}
	}
}

func (u *upstream) tick(now time.Time) {
	oc := u.conf.Load().outlier
	if oc == nil {
		return
	}
	for _, h := range u.hosts.Load().hosts {
		h.mu.Lock()
		if h.out.Load() {
			d := oc.baseEjection * time.Duration(h.numEjections)
			if oc.maxEjection > 0 && d > oc.maxEjection {
				d = oc.maxEjection
			}
			if !now.Before(h.ejectedAt.Add(d)) {
				h.out.Store(false)
				h.cons5xx, h.consGateway = 0, 0
				u.ejected.Add(-1)
			}
		} else if h.numEjections > 0 {
			h.numEjections--
		}
		h.mu.Unlock()
	}
	u.metrics.ejectionsActive.WithLabelValues(u.name).Set(float64(u.ejected.Load()))
}
