package harness

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Stage 4 sends every line to every other client, as a line ending in "\r\n", and not back to
// its sender.
func TestStage4Broadcast(t *testing.T) {
	s := StartServer(t, "stage4-broadcast")
	clients := s.DialClients(t, 3)

	clients[0].Send(t, "Hello\r\n")
	require.Equal(t, "Server: received from client: Hello", s.NextLine(t))
	require.Equal(t, "Hello\r\n", clients[1].ReadLine(t))
	require.Equal(t, "Hello\r\n", clients[2].ReadLine(t))
	clients[0].ExpectNothing(t, 300*time.Millisecond)

	// A line ended by a bare "\n" goes out ended by "\r\n" like every other.
	clients[1].Send(t, "Hola\n")
	require.Equal(t, "Server: received from client: Hola", s.NextLine(t))
	require.Equal(t, "Hola\r\n", clients[0].ReadLine(t))
	require.Equal(t, "Hola\r\n", clients[2].ReadLine(t))
	clients[1].ExpectNothing(t, 300*time.Millisecond)

	// After a client leaves, the others still hear each other.
	clients[2].Close()
	require.Equal(t, "Server: client disconnected", s.NextLine(t))
	clients[0].Send(t, "Bye\r\n")
	require.Equal(t, "Server: received from client: Bye", s.NextLine(t))
	require.Equal(t, "Bye\r\n", clients[1].ReadLine(t))
	clients[0].ExpectNothing(t, 300*time.Millisecond)
}

// Broadcasting changed nothing about the loop: it still spins while idle.
func TestStage4BurnsCPUWhileIdle(t *testing.T) {
	checkBurnsCPU(t, "stage4-broadcast")
}

func TestStage4ListenErrors(t *testing.T) {
	checkListenErrors(t, "stage4-broadcast")
}
