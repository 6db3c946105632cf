// Calls the lumen gateway from Node: sentence embeddings (EmbeddingService.Embed,
// forwarded by the gateway) and the merged model list (GatewayService.ListModels,
// a fan-out to every backend).
//
//   node dist/src/client.js [--address HOST:PORT] [--json] TEXT...
//
// The address defaults to $LUMEN_ADDRESS or localhost:50051; an API key in
// $LUMEN_API_KEY is sent as "x-api-key". --json prints one JSON object for scripts
// and tests: {"embed": EmbedResponse, "vectors": decoded vectors, "models":
// ListModelsResponse}, the responses in proto3 JSON.
import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { parseArgs } from "node:util";

import { modelStateToJSON, type Vector, VectorEncoding } from "../gen/lumen/common/v1/common.js";
import { EmbeddingServiceClient, EmbedRequest, EmbedResponse } from "../gen/lumen/embeddings/v1/embeddings.js";
import { GatewayServiceClient, ListModelsRequest, ListModelsResponse } from "../gen/lumen/gateway/v1/gateway.js";

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

function printEmbeddings(texts: string[], response: EmbedResponse): void {
  const model = response.model;
  console.log(`model ${model?.name} v${model?.version} on ${model?.device}`);
  response.embeddings.forEach((vector, i) => {
    const values = components(vector);
    const head = values.slice(0, 5).map((x) => x.toFixed(4)).join(", ");
    const norm = Math.sqrt(values.reduce((sum, x) => sum + x * x, 0));
    console.log(`  ${JSON.stringify(texts[i].slice(0, 40))}: ${values.length} dims [${head}, ...] norm ${norm.toFixed(4)}`);
  });
  console.log(`${response.usage?.inputTokens ?? 0} input tokens`);
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
    if (flags.json) {
      const vectors = embedded.embeddings.map(components);
      console.log(
        JSON.stringify({ embed: EmbedResponse.toJSON(embedded), vectors, models: ListModelsResponse.toJSON(models) }),
      );
    } else {
      printEmbeddings(texts, embedded);
      printModels(models);
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
