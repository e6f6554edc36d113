package tests

import (
	"os"
	"testing"

	"github.com/gin-gonic/gin"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode) // as run() does: no debug route dump
	code := m.Run()
	stopMailpit() // the one this process started, if any
	os.Exit(code)
}
