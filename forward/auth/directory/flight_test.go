package directory

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/internal/slapdtest"
)

// TestOneCheckForConcurrentSignIns: many sign-ins with the same credentials at
// once make one check against the directory (the others wait for it or find it
// cached). Needs slapd.
func TestOneCheckForConcurrentSignIns(t *testing.T) {
	s := slapdtest.Start(t)
	d, err := New(Config{URL: s.URL, BindDN: slapdtest.BindDN, BindPasswordFile: s.BindPasswordFile, BaseDN: slapdtest.BaseDN})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			if _, _, ok, err := d.Verify(context.Background(), "alice", "alice-pw"); !ok || err != nil {
				errs <- fmt.Errorf("Verify: %v %v", ok, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := d.dials.Load(); n != 1 {
		t.Errorf("20 concurrent sign-ins opened %d connections, want 1", n)
	}
}
