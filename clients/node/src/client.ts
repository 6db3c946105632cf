// Calls the lumen gateway from Node: sentence embeddings (EmbeddingService.Embed,
// forwarded by the gateway), the merged model list (GatewayService.ListModels,
// a fan-out to every backend) and, per text, the composite
// GatewayService.AnalyzeText (language, sentiment and embedding in parallel,
// each part with its own status).
//
//   node dist/src/client.js [--address HOST:PORT] [--json] TEXT...
//
// The address defaults to $LUMEN_ADDRESS or localhost:50051; an API key in
// $LUMEN_API_KEY is sent as "x-api-key". --json prints one JSON object for scripts
// and tests: {"embed": EmbedResponse, "vectors": decoded vectors, "models":
// ListModelsResponse, "analyze": [AnalyzeTextResponse per text],
// "analyze_vectors": [decoded embedding per text, [] when that part failed]},
// the responses in proto3 JSON.
import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { parseArgs } from "node:util";

import type { Status } from "../gen/google/rpc/status.js";
import { type ModelInfo, modelStateToJSON, type Vector, VectorEncoding } from "../gen/lumen/common/v1/common.js";
import { EmbeddingServiceClient, EmbedRequest, EmbedResponse } from "../gen/lumen/embeddings/v1/embeddings.js";
import {
  AnalyzeTextRequest,
  AnalyzeTextResponse,
  GatewayServiceClient,
  ListModelsRequest,
  ListModelsResponse,
  TextFeatureType,
} from "../gen/lumen/gateway/v1/gateway.js";
import { sentimentLabelToJSON } from "../gen/lumen/nlp/v1/nlp.js";

// The gateway accepts messages up to 32 MiB; grpc-js would refuse replies over 4 MiB.
const MAX_MESSAGE_BYTES = 32 * 1024 * 1024;
const DEADLINE_MS = 30_000;

type Callback<T> = (error: ServiceError | null, response: T) => void;

// Runs one unary call with a deadline and the caller's metadata, as a promise.
function unary<Req, Res>(
  call: (request: Req, metadata: Metadata, options: { deadline: Date }, callback: Callback<Res>) => unknown,
  request: Req,
  metadata: Metadata,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    call(request, metadata, { deadline: new Date(Date.now() + DEADLINE_MS) }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

// The vector's components, whichever encoding the server filled: packed
// little-endian float32 bytes (asked for below, cheaper) or repeated floats.
export function components(vector: Vector): number[] {
  if (vector.valuesF32.length === 0) return vector.values;
  const view = new DataView(vector.valuesF32.buffer, vector.valuesF32.byteOffset, vector.valuesF32.byteLength);
  return Array.from({ length: vector.valuesF32.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

// "384 dims [first five, ...] norm N": a vector in one line.
function describe(values: number[]): string {
  const head = values.slice(0, 5).map((x) => x.toFixed(4)).join(", ");
  const norm = Math.sqrt(values.reduce((sum, x) => sum + x * x, 0));
  return `${values.length} dims [${head}, ...] norm ${norm.toFixed(4)}`;
}

function printEmbeddings(texts: string[], response: EmbedResponse): void {
  const model = response.model;
  console.log(`model ${model?.name} v${model?.version} on ${model?.device}`);
  response.embeddings.forEach((vector, i) => {
    console.log(`  ${JSON.stringify(texts[i].slice(0, 40))}: ${describe(components(vector))}`);
  });
  console.log(`${response.usage?.inputTokens ?? 0} input tokens`);
}

// The features every AnalyzeText call asks for, one part each in the response.
const ANALYSES = [
  TextFeatureType.TEXT_FEATURE_TYPE_LANGUAGE,
  TextFeatureType.TEXT_FEATURE_TYPE_SENTIMENT,
  TextFeatureType.TEXT_FEATURE_TYPE_EMBEDDING,
];

// One part's line: "OK <result> (<model> v<version>)" or "code N: <why it failed>".
// A part the gateway did not return at all is reported as missing.
function partLine<Part extends { status?: Status; model?: ModelInfo }>(
  name: string,
  part: Part | undefined,
  result: (part: Part) => string,
): string {
  if (part === undefined) return `  ${name}: missing`;
  const code = part.status?.code ?? 0;
  if (code !== 0) return `  ${name}: code ${code}: ${part.status?.message}`;
  return `  ${name}: OK ${result(part)} (${part.model?.name} v${part.model?.version})`;
}

function printAnalyses(texts: string[], analyses: AnalyzeTextResponse[]): void {
  analyses.forEach((response, i) => {
    console.log(`analyze ${JSON.stringify(texts[i].slice(0, 40))}`);
    console.log(
      partLine("language", response.language, (part) =>
        part.languages.map((l) => `${l.languageCode} ${l.confidence.toFixed(4)}`).join(", "),
      ),
    );
    console.log(
      partLine("sentiment", response.sentiment, (part) => {
        const label = sentimentLabelToJSON(part.label).replace("SENTIMENT_LABEL_", "");
        return `${label} ${part.score.toFixed(4)}`;
      }),
    );
    console.log(
      partLine("embedding", response.embedding, (part) => describe(part.embedding ? components(part.embedding) : [])),
    );
  });
}

function printModels(response: ListModelsResponse): void {
  for (const model of response.models) {
    const state = modelStateToJSON(model.state).replace("MODEL_STATE_", "");
    console.log(`${model.service.padEnd(11)} ${model.name.padEnd(28)} v${model.version.padEnd(4)} ${model.task.padEnd(20)} ${state}`);
  }
  for (const backend of response.backends) {
    const code = backend.status?.code ?? 0;
    console.log(`backend ${backend.service}: ${code === 0 ? "OK" : `code ${code}: ${backend.status?.message}`}`);
  }
}

async function main(): Promise<void> {
  const { values: flags, positionals: texts } = parseArgs({
    options: { address: { type: "string" }, json: { type: "boolean", default: false } },
    allowPositionals: true,
  });
  if (texts.length === 0) throw new Error("usage: client.js [--address HOST:PORT] [--json] TEXT...");
  const address = flags.address ?? process.env.LUMEN_ADDRESS ?? "localhost:50051";
  const metadata = new Metadata();
  if (process.env.LUMEN_API_KEY) metadata.set("x-api-key", process.env.LUMEN_API_KEY);

  const options = {
    "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
  };
  const embeddings = new EmbeddingServiceClient(address, credentials.createInsecure(), options);
  // One connection for both services: they are served on the same gateway address.
  const gateway = new GatewayServiceClient(address, credentials.createInsecure(), {
    ...options,
    channelOverride: embeddings.getChannel(),
  });
  try {
    const embedded = await unary(
      embeddings.embed.bind(embeddings),
      EmbedRequest.fromPartial({ texts, encoding: VectorEncoding.VECTOR_ENCODING_F32_BYTES }),
      metadata,
    );
    const models = await unary(gateway.listModels.bind(gateway), ListModelsRequest.fromPartial({}), metadata);
    // AnalyzeText takes one text: one call per text, one after the other, so
    // each embedding is computed alone, as any single caller would get it.
    const analyses: AnalyzeTextResponse[] = [];
    for (const text of texts) {
      const request = AnalyzeTextRequest.fromPartial({
        text,
        features: ANALYSES.map((type) => ({ type })),
        embeddingEncoding: VectorEncoding.VECTOR_ENCODING_F32_BYTES,
      });
      analyses.push(await unary(gateway.analyzeText.bind(gateway), request, metadata));
    }
    if (flags.json) {
      const vectors = embedded.embeddings.map(components);
      console.log(
        JSON.stringify({
          embed: EmbedResponse.toJSON(embedded),
          vectors,
          models: ListModelsResponse.toJSON(models),
          analyze: analyses.map((response) => AnalyzeTextResponse.toJSON(response)),
          analyze_vectors: analyses.map((response) =>
            response.embedding?.embedding ? components(response.embedding.embedding) : [],
          ),
        }),
      );
    } else {
      printEmbeddings(texts, embedded);
      printModels(models);
      printAnalyses(texts, analyses);
    }
  } finally {
    embeddings.close();
  }
}

main().catch((error: Error & Partial<ServiceError>) => {
  // A gRPC error carries its status code and message; print both and fail.
  console.error(error.code === undefined ? error.message : `gRPC error ${error.code}: ${error.details}`);
  process.exit(1);
});
