package tests

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services"
)

// TestStartMeasuresTheStoredHashFamilies: failed logins are padded to the
// slowest hash family, so an instance must know the families in the
// database before a probe of a legacy account would teach it: at start it
// measures one stored hash of each (on the real database's SQL too). The
// times themselves belong to BenchmarkFailedLoginByStoredHash.
func TestStartMeasuresTheStoredHashFamilies(t *testing.T) {
	t.Parallel()
	deps := newDeps(t, nil)
	first := deps.start(t)
	older, err := services.NewHasher(services.Argon2Params{MemoryKiB: 32, Iterations: 1, Parallelism: 1}, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	olderHash, _ := older.Hash(context.Background(), testPassword)
	bc5, _ := bcrypt.GenerateFromPassword([]byte(testPassword), 5)
	for _, hash := range []string{olderHash, string(bc5), string(bc5)} {
		user := models.User{ID: uuid.NewString(), Email: uniqueEmail("legacy"), Name: "Legacy", Role: models.RoleUser, PasswordHash: hash, SessionVersion: 1}
		if err := first.DB.Create(&user).Error; err != nil {
			t.Fatal(err)
		}
	}
	first.newClient(t).register(uniqueEmail("current"))

	restarted := deps.start(t)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(restarted.Logs.String(), "password hash families measured") {
		if time.Now().After(deadline) {
			t.Fatalf("got no measurement at start; logs %s", restarted.Logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	logs := restarted.Logs.String()
	for _, family := range []string{`"bcrypt cost 5"`, `"argon2id m=32,t=1,p=1"`, `"argon2id m=64,t=1,p=1"`} {
		if !strings.Contains(logs, family) {
			t.Errorf("got logs %s, want %s measured", logs, family)
		}
	}
}
