package services

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessionauth/api/models"
)

// TestMigrateCountsExistingUsersAsVerified runs the migration over a users
// table of the version before email verification: the users already there
// count as verified, users created afterwards do not.
func TestMigrateCountsExistingUsersAsVerified(t *testing.T) {
	ctx := context.Background()
	db, err := OpenDatabase(DatabaseOptions{SQLitePath: filepath.Join(t.TempDir(), "old.db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	// The table as the earlier version left it, with one user.
	if err := db.Exec("ALTER TABLE users DROP COLUMN email_verified_at").Error; err != nil {
		t.Fatal(err)
	}
	created := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := db.Exec(`INSERT INTO users (id, email, name, role, disabled, password_hash, session_version, created_at, updated_at)
		VALUES ('3f1c2b9e-8a4d-4c1e-9b7a-2d5e6f708192', 'old@example.com', 'Old', 'user', false, 'x', 1, ?, ?)`, created, created).Error; err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	users := NewUsers(db, time.Second)
	old, err := users.FindByEmail(ctx, "old@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !old.EmailVerified() {
		t.Fatal("a user from before verification is not verified")
	}
	fresh, err := users.Create(ctx, NewUser{Email: "new@example.com", Name: "New", Role: models.RoleUser, PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if fresh, err = users.FindByID(ctx, fresh.ID); err != nil || fresh.EmailVerified() {
		t.Fatalf("got %v, %v; want a new user unverified, also after another migration", fresh.EmailVerifiedAt, err)
	}
}
