// Command lumen-client calls the lumen gateway from Go: sentence embeddings
// (EmbeddingService.Embed, forwarded by the gateway), the merged model list
// (GatewayService.ListModels, a fan-out to every backend) and, per text, the
// composite GatewayService.AnalyzeText (language, sentiment and embedding in
// parallel, each part with its own status).
//
//	lumen-client [-address HOST:PORT] [-json] TEXT...
//
// The address defaults to $LUMEN_ADDRESS or localhost:50051; an API key in
// $LUMEN_API_KEY is sent as "x-api-key". -json prints one JSON object for scripts
// and tests: {"embed": EmbedResponse, "vectors": decoded vectors, "models":
// ListModelsResponse, "analyze": [AnalyzeTextResponse per text],
// "analyze_vectors": [decoded embedding per text, [] when that part failed]},
// the responses in proto3 JSON.
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

	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

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

// describe puts a vector in one line: "384 dims [first five, ...] norm N".
func describe(values []float32) string {
	var norm float64
	head := make([]string, 0, 5)
	for j, x := range values {
		norm += float64(x) * float64(x)
		if j < 5 {
			head = append(head, fmt.Sprintf("%.4f", x))
		}
	}
	return fmt.Sprintf("%d dims [%s, ...] norm %.4f", len(values), strings.Join(head, ", "), math.Sqrt(norm))
}

// shorten keeps a text's first 40 characters for display.
func shorten(text string) string {
	if runes := []rune(text); len(runes) > 40 {
		return string(runes[:40])
	}
	return text
}

func printEmbeddings(texts []string, r *embeddingsv1.EmbedResponse) {
	m := r.GetModel()
	fmt.Printf("model %s v%s on %s\n", m.GetName(), m.GetVersion(), m.GetDevice())
	for i, v := range r.GetEmbeddings() {
		fmt.Printf("  %q: %s\n", shorten(texts[i]), describe(components(v)))
	}
	fmt.Printf("%d input tokens\n", r.GetUsage().GetInputTokens())
}

// analyses are the features every AnalyzeText call asks for, one part each in the response.
var analyses = []gatewayv1.TextFeatureType{
	gatewayv1.TextFeatureType_TEXT_FEATURE_TYPE_LANGUAGE,
	gatewayv1.TextFeatureType_TEXT_FEATURE_TYPE_SENTIMENT,
	gatewayv1.TextFeatureType_TEXT_FEATURE_TYPE_EMBEDDING,
}

// part is what every AnalyzeText part has: its own status and the model that answered.
type part interface {
	proto.Message
	GetStatus() *statuspb.Status
	GetModel() *commonv1.ModelInfo
}

// printPart prints one part's line: "OK <result> (<model> v<version>)" or
// "code N: <why it failed>"; a part the gateway did not return is missing.
func printPart(name string, p part, result func() string) {
	switch {
	case !p.ProtoReflect().IsValid():
		fmt.Printf("  %s: missing\n", name)
	case p.GetStatus().GetCode() != 0:
		fmt.Printf("  %s: code %d: %s\n", name, p.GetStatus().GetCode(), p.GetStatus().GetMessage())
	default:
		fmt.Printf("  %s: OK %s (%s v%s)\n", name, result(), p.GetModel().GetName(), p.GetModel().GetVersion())
	}
}

func printAnalyses(texts []string, responses []*gatewayv1.AnalyzeTextResponse) {
	for i, r := range responses {
		fmt.Printf("analyze %q\n", shorten(texts[i]))
		language, sentiment, embedding := r.GetLanguage(), r.GetSentiment(), r.GetEmbedding()
		printPart("language", language, func() string {
			scores := make([]string, 0, len(language.GetLanguages()))
			for _, l := range language.GetLanguages() {
				scores = append(scores, fmt.Sprintf("%s %.4f", l.GetLanguageCode(), l.GetConfidence()))
			}
			return strings.Join(scores, ", ")
		})
		printPart("sentiment", sentiment, func() string {
			label := strings.TrimPrefix(sentiment.GetLabel().String(), "SENTIMENT_LABEL_")
			return fmt.Sprintf("%s %.4f", label, sentiment.GetScore())
		})
		printPart("embedding", embedding, func() string { return describe(components(embedding.GetEmbedding())) })
	}
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

func printJSON(embedded *embeddingsv1.EmbedResponse, models *gatewayv1.ListModelsResponse,
	analyzed []*gatewayv1.AnalyzeTextResponse) error {
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
	analyzeJSON := make([]json.RawMessage, 0, len(analyzed))
	analyzeVectors := make([][]float32, 0, len(analyzed))
	for _, r := range analyzed {
		one, err := protojson.Marshal(r)
		if err != nil {
			return err
		}
		analyzeJSON = append(analyzeJSON, one)
		// Never null: [] when the embedding part failed.
		analyzeVectors = append(analyzeVectors, append([]float32{}, components(r.GetEmbedding().GetEmbedding())...))
	}
	out, err := json.Marshal(map[string]any{
		"embed": json.RawMessage(embedJSON), "vectors": vectors, "models": json.RawMessage(modelsJSON),
		"analyze": analyzeJSON, "analyze_vectors": analyzeVectors,
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
	// AnalyzeText takes one text: one call per text, one after the other, so
	// each embedding is computed alone, as any single caller would get it.
	features := make([]*gatewayv1.TextFeature, 0, len(analyses))
	for _, t := range analyses {
		features = append(features, &gatewayv1.TextFeature{Type: t})
	}
	analyzed := make([]*gatewayv1.AnalyzeTextResponse, 0, len(texts))
	for _, text := range texts {
		r, err := gatewayv1.NewGatewayServiceClient(conn).AnalyzeText(ctx, &gatewayv1.AnalyzeTextRequest{
			Text:              text,
			Features:          features,
			EmbeddingEncoding: commonv1.VectorEncoding_VECTOR_ENCODING_F32_BYTES,
		})
		if err != nil {
			return err
		}
		analyzed = append(analyzed, r)
	}
	if asJSON {
		return printJSON(embedded, models, analyzed)
	}
	printEmbeddings(texts, embedded)
	printModels(models)
	printAnalyses(texts, analyzed)
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
