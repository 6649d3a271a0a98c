;; For each DIR/<base>.edn ({:id N :datoms [[e a v tx added] ...]}) writes
;; DIR/<base>.clj.fress (write-object of the chunk map, no footer) and
;; DIR/<base>.clj.fress.gz (GZIPOutputStream at its default level), exactly
;; as the Clojure Datacamp library does.
;;
;; Usage: clojure -cp <data.fressian.jar>:<fressian.jar> chunk_fixtures.clj DIR
;; Prints "WROTE <base> <sha256 of the .gz>" per chunk and "DONE <count>".
(load-file (str (.getParent (java.io.File. ^String *file*)) "/chunk_common.clj"))

(let [[dir] *command-line-args*
      files (sort (filter #(.endsWith (.getName ^java.io.File %) ".edn") (.listFiles (java.io.File. ^String dir))))]
  (doseq [^java.io.File f files]
    (let [base (subs (.getName f) 0 (- (count (.getName f)) 4))
          {:keys [id datoms]} (read-edn-file (.getPath f))
          b (fressian-bytes (chunk-map id (vec datoms)))
          gz (gzip-bytes b)]
      (with-open [o (java.io.FileOutputStream. (str dir "/" base ".clj.fress"))] (.write o b))
      (with-open [o (java.io.FileOutputStream. (str dir "/" base ".clj.fress.gz"))] (.write o gz))
      (println "WROTE" base (sha256-hex gz))))
  (println "DONE" (count files)))
