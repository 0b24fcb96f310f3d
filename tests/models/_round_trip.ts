import * as tf from "@tensorflow/tfjs";

/** `model` saved to memory (topology and weights, as a file save would write them) and loaded back. */
export async function roundTrip(model: tf.LayersModel): Promise<tf.LayersModel> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler((art) => {
    saved = art;
    return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } });
  }));
  return await tf.loadLayersModel(tf.io.fromMemory(saved!));
}
