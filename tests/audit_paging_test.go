package tests

import (
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionauth/api/models"
)

// TestAuditPagesNeitherRepeatNorSkipWhileEventsArrive pages through one
// user's events, 7 a page, while new events of that user are stored
// concurrently: every event that existed before the first page comes exactly
// once, none repeats, and the order is strictly newest first by time then id,
// also across 20 events that share one timestamp.
func TestAuditPagesNeitherRepeatNorSkipWhileEventsArrive(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	admin, _ := s.newAdmin(t)
	userID := uuid.NewString()
	before := map[string]bool{}
	for _, id := range s.insertEvents(t, 20, time.Now().Add(-time.Hour), userID) { // a tie on time
		before[id] = true
	}
	for range 100 {
		if err := s.App.Audit.Record(t.Context(), models.AuditEvent{Event: models.EventLogout, UserID: &userID}); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range s.storedEvents(t, "user_id = ?", userID) {
		before[e.ID] = true
	}

	stop, done := make(chan struct{}), make(chan int)
	go func() {
		n := 0
		defer func() { done <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.App.Audit.Record(t.Context(), models.AuditEvent{Event: models.EventLoginSucceeded, UserID: &userID}); err != nil {
				t.Error(err)
				return
			}
			n++
			time.Sleep(time.Millisecond)
		}
	}()
	paged := admin.allEvents("/admin/audit", url.Values{"user_id": {userID}}, 7)
	close(stop)
	arrived := <-done

	stored := map[string]models.AuditEvent{}
	for _, e := range s.storedEvents(t, "user_id = ?", userID) {
		stored[e.ID] = e
	}
	seen := map[string]bool{}
	for i, e := range paged {
		if seen[e.ID] {
			t.Fatalf("event %s came twice", e.ID)
		}
		seen[e.ID] = true
		if i > 0 {
			prev, cur := stored[paged[i-1].ID], stored[e.ID]
			if !cur.At.Before(prev.At) && !(cur.At.Equal(prev.At) && cur.ID < prev.ID) {
				t.Fatalf("event %d (%s %s) does not come after %s %s", i, cur.At, cur.ID, prev.At, prev.ID)
			}
		}
	}
	for id := range before {
		if !seen[id] {
			t.Fatalf("event %s, stored before paging began, is missing from the pages", id)
		}
	}
	if arrived == 0 {
		t.Fatal("no event arrived while paging: the test proved nothing")
	}
	t.Logf("%d events paged, %d before paging, %d stored meanwhile", len(paged), len(before), arrived)
}

// TestAuditPruningRemovesOnlyEventsPastRetention lets the server's own pruner
// run every 100 ms: while another instance holds the prune lock nothing is
// deleted; once it is free, every event older than AUDIT_RETENTION goes
// (2,500 of them: three batches) and every younger one stays; the lock is
// released afterwards.
func TestAuditPruningRemovesOnlyEventsPastRetention(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"AUDIT_RETENTION": "1h", "AUDIT_PRUNE_INTERVAL": "100ms"})
	lock := s.Config.Session.KeyPrefix + "audit:prune-lock"
	s.redisCmd(t, "SET", lock, "another instance", "PX", 60000)
	old := s.insertEvents(t, 2500, time.Now().Add(-61*time.Minute), "")
	young := s.insertEvents(t, 10, time.Now().Add(-59*time.Minute), "")
	young = append(young, s.insertEvents(t, 5, time.Now(), uuid.NewString())...)

	time.Sleep(600 * time.Millisecond)
	if n := s.countEvents(t, "id IN ?", old); n != int64(len(old)) {
		t.Fatalf("got %d of %d old events left while another instance held the lock, want all", n, len(old))
	}
	if owner, _ := s.redisCmd(t, "GET", lock).([]byte); string(owner) != "another instance" {
		t.Fatalf("got lock owner %q, want the other instance's lock untouched", owner)
	}
	s.redisCmd(t, "DEL", lock)
	deadline := time.Now().Add(10 * time.Second)
	for s.countEvents(t, "id IN ?", old) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("got %d old events left after 10 s, want none", s.countEvents(t, "id IN ?", old))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := s.countEvents(t, "id IN ?", young); n != int64(len(young)) {
		t.Fatalf("got %d of %d events within retention, want all kept", n, len(young))
	}
	for i := 0; ; i++ { // runs come every 100 ms; between them the lock is free
		if n, _ := s.redisCmd(t, "EXISTS", lock).(int64); n == 0 {
			break
		}
		if i == 100 {
			t.Fatal("the prune lock stays held between runs")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
