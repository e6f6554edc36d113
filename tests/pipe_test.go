package tests

import (
	"io"
	"strings"
)

func ioPipe() (*io.PipeReader, *io.PipeWriter) { return io.Pipe() }

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
