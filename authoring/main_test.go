package authoring

import (
	"testing"

	"github.com/whenthen/whenthen/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
