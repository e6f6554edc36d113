package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/sessionauth/api/api"
	"github.com/sessionauth/api/config"
	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services"
)

// runCommand runs the migrate and create-user subcommands on the same
// application main serves. Only errors are logged: a command's warnings
// (development defaults) would drown its one line of output.
func runCommand(ctx context.Context, args []string, cfg config.Config, stdin io.Reader, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	switch args[0] {
	case "migrate":
		app, err := openMigrated(ctx, cfg, log)
		if err != nil {
			return err
		}
		app.Close()
		fmt.Fprintln(stdout, "migrations applied")
		return nil
	case "create-user":
		return createUser(ctx, args[1:], cfg, log, stdin, stdout, stderr)
	default:
		return fmt.Errorf("unknown command %q (want migrate or create-user)", args[0])
	}
}

func createUser(ctx context.Context, args []string, cfg config.Config, log *slog.Logger, stdin io.Reader, stdout, stderr io.Writer) error {
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
	password, err := readPassword(stdin, stderr)
	if err != nil {
		return fmt.Errorf("create-user: read password: %w", err)
	}
	in := services.Registration{Email: services.NormalizeEmail(*email), Name: services.NormalizeName(*name),
		Password: password, Role: models.Role(*role)}
	if err := services.ValidateRegistration(in); err != nil {
		return fmt.Errorf("create-user: %w", err)
	}
	app, err := openMigrated(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer app.Close()
	user, err := app.Admin.CreateUser(ctx, in)
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
	// In the audit log with no actor: nobody was logged in, the operator ran the command.
	if err := app.Audit.Record(ctx, models.AuditEvent{Event: models.EventUserCreated, UserID: &user.ID,
		Details: models.AuditDetails{"role": string(user.Role), "via": "create-user"}}); err != nil {
		log.Error("create-user: user created but not recorded in the audit log", "user_id", user.ID, "err", err)
	}
	fmt.Fprintln(stdout, user.ID)
	return nil
}

// openMigrated builds the application for a command and applies the schema.
func openMigrated(ctx context.Context, cfg config.Config, log *slog.Logger) (*api.App, error) {
	app, err := api.New(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	if err := app.Migrate(ctx); err != nil {
		app.Close()
		return nil, err
	}
	return app, nil
}

// readPassword reads one line of stdin. On a terminal it prompts on stderr
// and reads without echo, so the password is neither shown nor left on the
// screen; from a pipe (scripts) it reads the line as it is.
func readPassword(stdin io.Reader, prompt io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, "Password: ")
		line, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		return string(line), err
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
