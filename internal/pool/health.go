package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Run performs active health checks until ctx ends: every health.interval it
// requests health.path on each member concurrently; health.fall consecutive
// failures take a member down, health.rise consecutive passes bring it back
// (and end a passive ejection early).
// With no health.path it only waits (an Update may enable checks). Run owns the
// goroutines it starts and returns after they have finished.
func (p *Pool) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.changed:
		case <-timer.C:
		}
		s := p.state.Load()
		if s.cfg.Health.active() {
			p.checkAll(ctx, s)
		}
		timer.Reset(s.cfg.Health.Interval)
	}
}

// CheckNow runs one round of active health checks on every member and waits for it.
func (p *Pool) CheckNow(ctx context.Context) {
	if s := p.state.Load(); s.cfg.Health.active() {
		p.checkAll(ctx, s)
	}
}

func (p *Pool) checkAll(ctx context.Context, s *state) {
	var wg sync.WaitGroup
	for _, m := range s.members {
		wg.Go(func() {
			err := check(ctx, m, &s.cfg.Health)
			if ctx.Err() == nil {
				p.recordCheck(m, &s.cfg.Health, err)
			}
		})
	}
	wg.Wait()
}

// check performs one health request (or TCP connect) against m.
func check(ctx context.Context, m *Member, hc *HealthConfig) error {
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	if hc.TCP {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", memberAddr(m.URL))
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("TCP connect: no answer within %s (timeout)", hc.Timeout)
			}
			return fmt.Errorf("TCP connect: %w", err)
		}
		return c.Close()
	}
	u := *m.URL
	u.Path = joinPath(u.Path, hc.Path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "portcullis-health-check")
	resp, err := m.rt.RoundTrip(req)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return fmt.Errorf("GET %s: no answer within %s (timeout)", hc.Path, hc.Timeout)
	}
	if err != nil {
		return fmt.Errorf("GET %s: %w", hc.Path, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch want := hc.ExpectStatus; {
	case want != 0 && resp.StatusCode != want:
		return fmt.Errorf("GET %s: status %d, want %d", hc.Path, resp.StatusCode, want)
	case want == 0 && (resp.StatusCode < 200 || resp.StatusCode > 399):
		return fmt.Errorf("GET %s: status %d", hc.Path, resp.StatusCode)
	}
	return nil
}

// recordCheck applies one active check result with rise/fall hysteresis.
func (p *Pool) recordCheck(m *Member, hc *HealthConfig, err error) {
	st := m.st
	st.mu.Lock()
	defer st.mu.Unlock()
	st.lastCheck = p.now()
	if err == nil {
		st.checkPass++
		st.checkFail = 0
		st.lastError = ""
		switch {
		case !st.healthy.Load() && st.checkPass >= hc.Rise:
			st.healthy.Store(true)
			st.ejectedUntil.Store(0)
			st.consecFails.Store(0)
			p.logger.Info("member up", "member", m.name, "passes", st.checkPass)
		case st.checkPass >= hc.Rise && st.ejectedUntil.Load() > p.now().UnixNano():
			st.ejectedUntil.Store(0)
			p.logger.Info("ejection lifted by passing checks", "member", m.name, "passes", st.checkPass)
		}
		return
	}
	st.checkFail++
	st.checkPass = 0
	st.lastError = err.Error()
	if st.healthy.Load() && st.checkFail >= hc.Fall {
		st.healthy.Store(false)
		p.logger.Warn("member down", "member", m.name, "failures", st.checkFail, "err", err)
	}
}

// memberAddr is the host:port a member URL names (the scheme's port by default).
func memberAddr(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}
