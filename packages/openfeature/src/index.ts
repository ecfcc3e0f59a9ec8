// @holdfast/openfeature: an OpenFeature web provider backed by a Holdfast client (work in progress).
export {}
