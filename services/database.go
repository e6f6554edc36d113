package services

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/sessionauth/api/models"
)

// DatabaseOptions are the settings of the user database.
type DatabaseOptions struct {
	URL          string // PostgreSQL URL; empty opens the SQLite file at SQLitePath
	SQLitePath   string
	MaxOpenConns int
	MaxIdleConns int
	ConnMaxLife  time.Duration
}

// OpenDatabase opens PostgreSQL at opts.URL, or the embedded SQLite file when
// the URL is empty. It does not connect: a database that is down at start
// leaves the process running, and the pool connects when it comes back.
func OpenDatabase(opts DatabaseOptions) (*gorm.DB, error) {
	gormConfig := &gorm.Config{
		Logger:                 logger.Discard,
		TranslateError:         true,
		DisableAutomaticPing:   true,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
	var dialector gorm.Dialector
	if opts.URL != "" {
		dialector = postgres.New(postgres.Config{DSN: opts.URL, OptionOpenDB: []stdlib.OptionOpenDB{
			stdlib.OptionShouldPing(pingBeforeReuse)}})
	} else {
		if err := os.MkdirAll(filepath.Dir(opts.SQLitePath), 0o700); err != nil {
			return nil, fmt.Errorf("create sqlite folder: %w", err)
		}
		// WAL and a busy timeout let readers and the one writer share the file.
		dialector = sqlite.Open(opts.SQLitePath + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	}
	db, err := gorm.Open(dialector, gormConfig)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("database pool: %w", err)
	}
	if opts.URL == "" {
		// One connection serialises SQLite writes, which makes the last-admin
		// UPDATE race-free there as the advisory lock does on PostgreSQL.
		sqlDB.SetMaxOpenConns(1)
	} else {
		sqlDB.SetMaxOpenConns(opts.MaxOpenConns)
		sqlDB.SetMaxIdleConns(opts.MaxIdleConns)
		sqlDB.SetConnMaxLifetime(opts.ConnMaxLife)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	return db, nil
}

// pingBeforeReuse makes pgx check every pooled connection before reusing it.
// Its default checks only those idle over a second, so when the server ended
// the connections (a quick restart, a failover, an idle killer) the next
// requests failed with 503 (6 logins of 6 in a row in TestDatabaseDown; now
// none). The database is off the hot path (/me reads Redis only) and its
// calls follow a password hash, so one more round trip does not show.
func pingBeforeReuse(context.Context, stdlib.ShouldPingParams) bool { return true }

// Migrate applies the schema (users, audit log, mailed tokens, second factors), in one transaction. Users that exist when
// email verification is introduced count as verified (they were trusted
// before it existed); a migration that fails leaves the schema as it was, so
// a rerun does that again.
func Migrate(ctx context.Context, db *gorm.DB) error {
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		m := tx.Migrator()
		introducing := m.HasTable(&models.User{}) && !m.HasColumn(&models.User{}, "EmailVerifiedAt")
		if err := tx.AutoMigrate(&models.User{}, &models.AuditEvent{}, &models.Token{}, &models.RecoveryCode{}, &models.Passkey{}); err != nil {
			return err
		}
		if introducing {
			return tx.Model(&models.User{}).Where("email_verified_at IS NULL").
				Update("email_verified_at", gorm.Expr("created_at")).Error
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// PingDatabase checks that the database answers within ctx.
func PingDatabase(ctx context.Context, db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}
