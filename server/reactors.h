// The streaming calls' reactors (private to the service). Each is created
// per call, owns its state and deletes itself in OnDone.
#ifndef QUANTD_SERVER_REACTORS_H_
#define QUANTD_SERVER_REACTORS_H_

#include <grpcpp/grpcpp.h>

#include "quantd/server/operations.h"
#include "quantd/v1/quantd.pb.h"

namespace quantd::server {

// UploadModel on raw messages: `response` gets the serialized v1::Model.
grpc::ServerReadReactor<grpc::ByteBuffer>* NewUploadReactor(const ServiceContext* ctx,
                                                            grpc::CallbackServerContext* context,
                                                            grpc::ByteBuffer* response);
grpc::ServerWriteReactor<v1::JobEvent>* NewWatchReactor(const ServiceContext* ctx,
                                                        grpc::CallbackServerContext* context,
                                                        const v1::WatchJobRequest* request);
grpc::ServerWriteReactor<grpc::ByteBuffer>* NewDownloadReactor(const ServiceContext* ctx,
                                                               grpc::CallbackServerContext* context,
                                                               const grpc::ByteBuffer* request);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_REACTORS_H_
