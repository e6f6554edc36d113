package services

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sessionauth/api/models"
)

// TestDataExceptionsAreNotOutages: PostgreSQL's class 22 answers are about
// the value sent, so they must not become service_unavailable (an outage,
// and the dependency-error metric operators alert on).
func TestDataExceptionsAreNotOutages(t *testing.T) {
	cases := []struct {
		code string
		want *models.Error
	}{
		{"22P02", models.ErrNotFound}, // invalid_text_representation: 'urn:uuid:…' as a uuid
		{"22021", models.ErrNotFound}, // character_not_in_repertoire: a NUL byte
		{"22001", models.ErrNotFound}, // string_data_right_truncation
		{"08006", models.ErrUnavailable},
		{"57014", models.ErrUnavailable}, // query_canceled: the timeout
	}
	for _, tc := range cases {
		err := dbError(fmt.Errorf("query: %w", &pgconn.PgError{Code: tc.code}))
		if !errors.Is(err, tc.want) {
			t.Errorf("SQLSTATE %s: got %v, want %s", tc.code, err, tc.want.Code)
		}
	}
}
