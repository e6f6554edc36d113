package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"gorm.io/gorm"

	"github.com/sessionauth/api/config"
	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services"
	"github.com/sessionauth/api/services/commonpasswords"
)

// runCommand runs the migrate and create-user subcommands.
func runCommand(ctx context.Context, args []string, cfg config.Config, db *gorm.DB, stdin io.Reader, stdout io.Writer) error {
	switch args[0] {
	case "migrate":
		if err := services.Migrate(ctx, db); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "migrations applied")
		return nil
	case "create-user":
		return createUser(ctx, args[1:], cfg, db, stdin, stdout)
	default:
		return fmt.Errorf("unknown command %q (want migrate or create-user)", args[0])
	}
}

func createUser(ctx context.Context, args []string, cfg config.Config, db *gorm.DB, stdin io.Reader, stdout io.Writer) error {
	flags := flag.NewFlagSet("create-user", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	email := flags.String("email", "", "email")
	name := flags.String("name", "", "name")
	role := flags.String("role", "user", "user or admin")
	fromStdin := flags.Bool("password-stdin", false, "read the password from standard input")
	if err := flags.Parse(args); err != nil {
		return fmt.Errorf("create-user: %w (usage: create-user --email E --name N --role user|admin --password-stdin)", err)
	}
	if !*fromStdin {
		return errors.New("create-user: --password-stdin is required (the password is read from standard input)")
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("create-user: read password: %w", err)
	}
	in := services.Registration{Email: services.NormalizeEmail(*email), Name: strings.TrimSpace(*name),
		Password: strings.TrimRight(line, "\r\n"), Role: models.Role(*role)}
	if err := services.ValidateRegistration(in); err != nil {
		return fmt.Errorf("create-user: %w", err)
	}
	if err := services.Migrate(ctx, db); err != nil {
		return err
	}
	hasher, err := services.NewHasher(services.Argon2Params{MemoryKiB: cfg.Argon2MemoryKiB, Iterations: cfg.Argon2Iterations,
		Parallelism: cfg.Argon2Parallelism}, 1, cfg.HashWait)
	if err != nil {
		return err
	}
	users := services.NewUsers(db, cfg.DatabaseTimeout)
	auth := services.NewAuth(users, hasher, nil, nil, commonpasswords.New(), nil)
	user, err := services.NewAdmin(users, auth, nil).CreateUser(ctx, in)
	if errors.Is(err, models.ErrEmailTaken) {
		return fmt.Errorf("create-user: email %s is already taken", in.Email)
	}
	var coded *models.Error
	if errors.As(err, &coded) && len(coded.Fields) > 0 {
		for field, problem := range coded.Fields {
			return fmt.Errorf("create-user: %s %s", field, problem)
		}
	}
	if err != nil {
		return fmt.Errorf("create-user: %w", err)
	}
	fmt.Fprintln(stdout, user.ID)
	return nil
}
