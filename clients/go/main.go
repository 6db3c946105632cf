// Command lumen-client calls the lumen gateway from Go: sentence embeddings
// (EmbeddingService.Embed, forwarded by the gateway) and the merged model list
// (GatewayService.ListModels, a fan-out to every backend).
//
//	lumen-client [-address HOST:PORT] [-json] TEXT...
//
// The address defaults to $LUMEN_ADDRESS or localhost:50051; an API key in
// $LUMEN_API_KEY is sent as "x-api-key". -json prints one JSON object for scripts
// and tests: {"embed": EmbedResponse, "vectors": decoded vectors, "models":
// ListModelsResponse}, the responses in proto3 JSON.
//
// Built in GOPATH mode against Debian's grpc-go 1.33 (see build.sh), hence
// grpc.DialContext and grpc.WithInsecure rather than the newer grpc.NewClient.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	commonv1 "lumen/gen/go/lumen/common/v1"
	embeddingsv1 "lumen/gen/go/lumen/embeddings/v1"
	gatewayv1 "lumen/gen/go/lumen/gateway/v1"
)

// The gateway accepts messages up to 32 MiB; grpc-go would refuse replies over 4 MiB.
const maxMessageBytes = 32 << 20

// components returns a vector's values, whichever encoding the server filled:
// packed little-endian float32 bytes (asked for below, cheaper) or repeated floats.
func components(v *commonv1.Vector) []float32 {
	if len(v.GetValuesF32()) == 0 {
		return v.GetValues()
	}
	raw := v.GetValuesF32()
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

func printEmbeddings(texts []string, r *embeddingsv1.EmbedResponse) {
	m := r.GetModel()
	fmt.Printf("model %s v%s on %s\n", m.GetName(), m.GetVersion(), m.GetDevice())
	for i, v := range r.GetEmbeddings() {
		values := components(v)
		var norm float64
		head := make([]string, 0, 5)
		for j, x := range values {
			norm += float64(x) * float64(x)
			if j < 5 {
				head = append(head, fmt.Sprintf("%.4f", x))
			}
		}
		text := texts[i]
		if len(text) > 40 {
			text = text[:40]
		}
		fmt.Printf("  %q: %d dims [%s, ...] norm %.4f\n", text, len(values), strings.Join(head, ", "), math.Sqrt(norm))
	}
	fmt.Printf("%d input tokens\n", r.GetUsage().GetInputTokens())
}

func printModels(r *gatewayv1.ListModelsResponse) {
	for _, m := range r.GetModels() {
		state := strings.TrimPrefix(m.GetState().String(), "MODEL_STATE_")
		fmt.Printf("%-11s %-28s v%-4s %-20s %s\n", m.GetService(), m.GetName(), m.GetVersion(), m.GetTask(), state)
	}
	for _, b := range r.GetBackends() {
		if b.GetStatus().GetCode() == 0 {
			fmt.Printf("backend %s: OK\n", b.GetService())
		} else {
			fmt.Printf("backend %s: code %d: %s\n", b.GetService(), b.GetStatus().GetCode(), b.GetStatus().GetMessage())
		}
	}
}

func printJSON(embedded *embeddingsv1.EmbedResponse, models *gatewayv1.ListModelsResponse) error {
	vectors := make([][]float32, 0, len(embedded.GetEmbeddings()))
	for _, v := range embedded.GetEmbeddings() {
		vectors = append(vectors, components(v))
	}
	embedJSON, err := protojson.Marshal(embedded)
	if err != nil {
		return err
	}
	modelsJSON, err := protojson.Marshal(models)
	if err != nil {
		return err
	}
	out, err := json.Marshal(map[string]any{
		"embed": json.RawMessage(embedJSON), "vectors": vectors, "models": json.RawMessage(modelsJSON),
	})
	if err == nil {
		fmt.Println(string(out))
	}
	return err
}

func run(address string, asJSON bool, texts []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if key := os.Getenv("LUMEN_API_KEY"); key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "x-api-key", key)
	}
	conn, err := grpc.DialContext(ctx, address, grpc.WithInsecure(),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes), grpc.MaxCallSendMsgSize(maxMessageBytes)))
	if err != nil {
		return err
	}
	defer conn.Close()

	embedded, err := embeddingsv1.NewEmbeddingServiceClient(conn).Embed(ctx, &embeddingsv1.EmbedRequest{
		Texts:    texts,
		Encoding: commonv1.VectorEncoding_VECTOR_ENCODING_F32_BYTES,
	})
	if err != nil {
		return err
	}
	models, err := gatewayv1.NewGatewayServiceClient(conn).ListModels(ctx, &gatewayv1.ListModelsRequest{})
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(embedded, models)
	}
	printEmbeddings(texts, embedded)
	printModels(models)
	return nil
}

func main() {
	defaultAddress := os.Getenv("LUMEN_ADDRESS")
	if defaultAddress == "" {
		defaultAddress = "localhost:50051"
	}
	address := flag.String("address", defaultAddress, "gateway address")
	asJSON := flag.Bool("json", false, "print the responses and decoded vectors as one JSON object")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: lumen-client [-address HOST:PORT] [-json] TEXT...")
		os.Exit(2)
	}
	if err := run(*address, *asJSON, flag.Args()); err != nil {
		// A gRPC error carries its status code and message; print both and fail.
		if s, ok := status.FromError(err); ok {
			fmt.Fprintf(os.Stderr, "gRPC error %s: %s\n", s.Code(), s.Message())
		} else {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(1)
	}
}
